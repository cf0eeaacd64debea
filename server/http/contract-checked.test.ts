/**
 * Handlers that answer by themselves (the cached reads) check the body they build with `checked`
 * when responses are validated, and only then: the registry's tests run with it on, production
 * with it off, and a cache hit never builds a body at all.
 */
import express from 'express';
import Type from 'typebox';
import { describe, expect, it } from 'vitest';
import { call, expectError, serveRouter } from '../../test/server/http-client.js';
import { route } from '../../src/api/route.js';
import { ANSWERED, createValidator, mountRoute } from './contract.js';

const spec = route({
  id: 'example.count',
  method: 'GET',
  path: '/count',
  summary: 'A count',
  auth: 'none',
  responses: { 200: { description: 'The count.', schema: Type.Object({ count: Type.Integer() }, { additionalProperties: false }) } },
});

async function serve(validateResponses: boolean, body: unknown): Promise<string> {
  const router = express.Router();
  mountRoute(router, createValidator(), spec, async (_input, _req, res, checked) => {
    res.json(checked(body));
    return ANSWERED;
  }, { guard: () => null, validateResponses });
  return serveRouter(router);
}

describe('checked', () => {
  it('refuses a body that does not match the route (500) when responses are validated', async () => {
    expectError(await call(await serve(true, { count: 'seven' }), '/count'), 'IQP_E_INTERNAL');
    expect((await call(await serve(true, { count: 7 }), '/count')).json()).toEqual({ count: 7 });
  });

  it('is the identity otherwise', async () => {
    expect((await call(await serve(false, { count: 'seven' }), '/count')).json()).toEqual({ count: 'seven' });
  });
});
