/**
 * Request bodies a route declares: JSON always, and form-encoded (RFC 6749 §6's shape, what stock
 * OAuth client libraries send) when the route says `bodyTypes: ['json', 'form']`. A form body is
 * judged by the same schema and size limit as a JSON one; a repeated key, another content type or
 * an oversize body never reaches the handler.
 */
import express from 'express';
import Type from 'typebox';
import { describe, expect, it } from 'vitest';
import { call, expectError, serveRouter } from '../../test/server/http-client.js';
import { route } from '../../src/api/route.js';
import { createValidator, mountRoute } from './contract.js';

const body = Type.Object({ grant_type: Type.Optional(Type.Literal('refresh_token')), refresh_token: Type.String({ maxLength: 256 }), n: Type.Optional(Type.Integer()) }, { additionalProperties: false });
const both = route({ id: 'example.both', method: 'POST', path: '/both', summary: 'JSON or form', auth: 'none', bodyTypes: ['json', 'form'], body, responses: { 200: { description: 'Echo.' } } });
const jsonOnly = route({ id: 'example.json', method: 'POST', path: '/json', summary: 'JSON only', auth: 'none', body, responses: { 200: { description: 'Echo.' } } });

const LIMIT = 1024;
const seen: unknown[] = [];

async function serve(): Promise<string> {
  const router = express.Router();
  for (const spec of [both, jsonOnly]) {
    mountRoute(
      router,
      createValidator(),
      spec,
      async ({ body: b }) => {
        seen.push(b);
        return b;
      },
      { guard: () => null, jsonLimit: LIMIT },
    );
  }
  return serveRouter(router);
}

const FORM = 'application/x-www-form-urlencoded';
const form = (text: string, type = FORM) => ({ method: 'POST', headers: { 'content-type': type }, body: text });

describe('form bodies', () => {
  it('are parsed and validated like JSON on a route that takes them (values are text; canonical numbers are converted)', async () => {
    const base = await serve();
    const ok = await call(base, '/both', form('grant_type=refresh_token&refresh_token=a.b%2Bc+d&n=12'));
    expect(ok.status, ok.body.toString()).toBe(200);
    expect(ok.json()).toEqual({ grant_type: 'refresh_token', refresh_token: 'a.b+c d', n: 12 });
    const charset = await call(base, '/both', form('refresh_token=x', `${FORM}; charset=utf-8`));
    expect(charset.json()).toEqual({ refresh_token: 'x' });
    expect((await call(base, '/both', { method: 'POST', json: { refresh_token: 'x' } })).json()).toEqual({ refresh_token: 'x' });
  });

  it('are refused with the field named when the schema refuses them', async () => {
    const base = await serve();
    for (const [text, field] of [
      ['grant_type=password&refresh_token=x', 'body.grant_type'],
      ['grant_type=refresh_token', 'body.refresh_token'],
      ['refresh_token=x&role=admin', 'body.role'],
      ['refresh_token=x&__proto__=y', 'body.__proto__'],
      ['refresh_token=x&n=0x10', 'body.n'],
    ] as const) {
      const r = await call(base, '/both', form(text));
      expectError(r, 'IQP_E_INVALID_REQUEST', text);
      expect(r.json().error.details.field, text).toBe(field);
    }
  });

  it('with a repeated key are refused (RFC 6749 §3.2), naming the key, before the handler runs', async () => {
    const base = await serve();
    const before = seen.length;
    for (const text of ['refresh_token=a&refresh_token=b', 'refresh_token=a&grant_type=refresh_token&grant_type=refresh_token']) {
      const r = await call(base, '/both', form(text));
      expectError(r, 'IQP_E_INVALID_REQUEST', text);
      expect(r.json().error.message).toMatch(/more than once/);
    }
    expect(seen.length).toBe(before);
  });

  it('over the JSON limit are refused with 413, and other content types with 400', async () => {
    const base = await serve();
    const before = seen.length;
    expectError(await call(base, '/both', form(`refresh_token=${'x'.repeat(LIMIT)}`)), 'IQP_E_UPLOAD_TOO_LARGE');
    for (const type of ['text/plain', 'multipart/form-data; boundary=x', 'application/xml']) {
      const r = await call(base, '/both', form('refresh_token=x', type));
      expectError(r, 'IQP_E_INVALID_REQUEST', type);
      expect(r.json().error.message).toContain(FORM);
    }
    expectError(await call(base, '/both', { method: 'POST' }), 'IQP_E_INVALID_REQUEST', 'no body');
    expect(seen.length).toBe(before);
  });

  it('are refused by a route that takes JSON only', async () => {
    const base = await serve();
    const r = await call(base, '/json', form('refresh_token=x'));
    expectError(r, 'IQP_E_INVALID_REQUEST');
    expect(r.json().error.message).not.toContain(FORM);
  });
});
