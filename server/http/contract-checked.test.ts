/**
 * Handlers that answer by themselves (the cached reads) check the body they build with `checked`
 * when responses are validated, and only then: the registry's tests run with it on, production
 * with it off, and a cache hit never builds a body at all.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Type from 'typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { call, expectError } from '../../test/server/http-client.js';
import { route } from '../../src/api/route.js';
import { ANSWERED, createValidator, mountRoute } from './contract.js';
import { errorHandler } from './errors.js';

const spec = route({
  id: 'example.count',
  method: 'GET',
  path: '/count',
  summary: 'A count',
  auth: 'none',
  responses: { 200: { description: 'The count.', schema: Type.Object({ count: Type.Integer() }, { additionalProperties: false }) } },
});

const servers: { close(): void }[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

async function serve(validateResponses: boolean, body: unknown): Promise<string> {
  const app = express();
  const router = express.Router();
  mountRoute(router, createValidator(), spec, async (_input, _req, res, checked) => {
    res.json(checked(body));
    return ANSWERED;
  }, { guard: () => null, validateResponses });
  app.use(router);
  app.use(errorHandler(() => {}));
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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
