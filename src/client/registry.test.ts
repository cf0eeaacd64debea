/** The client's retries, backoff and error mapping against a real HTTP server on 127.0.0.1. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isIqpError, type IqpError } from '../errors.js';
import { readJson, RegistryClient, type Timer } from './registry.js';
import { backoffDelay, DEFAULT_RETRY, retryAfterMs } from './retry.js';

const TOKEN = 'iqp_0123456789ab_SECRETSECRETSECRETSECRETSECRETSECRETSECRETSEC';
const FAST = { attempts: 4, baseMs: 1, maxMs: 5 };

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface TestServer {
  url: string;
  requests: { method: string; url: string; auth: string | undefined; body: string }[];
  close(): Promise<void>;
}

const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

/** A server answering the n-th request (from 1) with `handler`, recording what it received. */
async function serve(handler: Handler): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body: Buffer.concat(parts).toString('utf8') });
      handler(req, res, requests.length);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

const coded = (code: string, message: string, details?: object) => ({ error: { code, message, ...(details ? { details } : {}) } });

const clients: RegistryClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

function client(url: string, extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}): RegistryClient {
  const c = new RegistryClient({ baseUrl: url, token: TOKEN, retry: FAST, ...extra });
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<IqpError> {
  try {
    await p;
  } catch (err) {
    if (isIqpError(err)) return err;
    throw err;
  }
  throw new Error('expected the request to fail');
}

describe('backoff', () => {
  it('doubles each retry, adds up to half again as jitter, and stays under the cap', () => {
    const policy = { attempts: 6, baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy, () => 0))).toEqual([50, 100, 200, 400, 500]);
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy, () => 1))).toEqual([100, 200, 400, 800, 1000]);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, policy);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });

  it('reads Retry-After seconds, capped by the policy', () => {
    expect(retryAfterMs('2', DEFAULT_RETRY)).toBe(2000);
    expect(retryAfterMs('3600', DEFAULT_RETRY)).toBe(DEFAULT_RETRY.maxMs);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT', DEFAULT_RETRY)).toBeNull();
    expect(retryAfterMs(undefined, DEFAULT_RETRY)).toBeNull();
  });
});

describe('RegistryClient retries', () => {
  it('retries 502, 503 and 504, then returns the answer', async () => {
    const statuses = [502, 503, 504];
    const s = await serve((_req, res, n) => (n <= 3 ? res.writeHead(statuses[n - 1]!).end('<html>bad gateway</html>') : json(res, 200, { ok: n })));
    const notes: string[] = [];
    const body = await client(s.url, { onRetry: (m) => notes.push(m) }).json<{ ok: number }>({ method: 'GET', path: '/v1/packs/x' });
    expect(body).toEqual({ ok: 4 });
    expect(s.requests).toHaveLength(4);
    expect(notes).toHaveLength(3);
    expect(notes[0]).toContain('HTTP 502');
  });

  it('gives up after the bounded number of attempts with the last answer’s error', async () => {
    const s = await serve((_req, res) => json(res, 503, coded('IQP_E_UNAVAILABLE', 'database locked'), { 'retry-after': '0' }));
    const err = await failure(client(s.url).json({ method: 'GET', path: '/v1/health' }));
    expect(s.requests).toHaveLength(FAST.attempts);
    expect(err.code).toBe('IQP_E_UNAVAILABLE');
    expect(err.exitCode).toBe(3);
    const html = await serve((_req, res) => res.writeHead(502).end('<html><body>Bad Gateway</body></html>'));
    const e2 = await failure(client(html.url).json({ method: 'GET', path: '/v1/health' }));
    expect(e2.code).toBe('IQP_E_REGISTRY');
    expect(e2.message).toContain('HTTP 502');
    expect(e2.message).toContain('Bad Gateway');
  });

  it('never retries a 4xx, and keeps the registry’s code, message and details', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/v1/packs/missing') return json(res, 404, coded('IQP_E_NOT_FOUND', 'No pack named missing.', { package_id: 'missing' }));
      if (req.url === '/v1/admin/packs') return json(res, 409, coded('IQP_E_VERSION_EXISTS', 'x@1.0.0 is already published'));
      return json(res, 401, coded('IQP_E_UNAUTHORIZED', 'The token is unknown or revoked.'));
    });
    const c = client(s.url);
    const notFound = await failure(c.json({ method: 'GET', path: '/v1/packs/missing' }));
    expect(notFound).toMatchObject({ code: 'IQP_E_NOT_FOUND', message: 'No pack named missing.', details: { package_id: 'missing' }, exitCode: 3 });
    const exists = await failure(c.json({ method: 'PUT', path: '/v1/admin/packs', auth: true, json: {} }));
    expect(exists).toMatchObject({ code: 'IQP_E_VERSION_EXISTS', exitCode: 3 });
    const unauthorized = await failure(c.json({ method: 'GET', path: '/v1/admin/keys', auth: true }));
    expect(unauthorized.code).toBe('IQP_E_UNAUTHORIZED');
    expect(s.requests).toHaveLength(3);
  });

  it('does not retry a 500, and does not take the registry’s internal error as one of ours', async () => {
    const s = await serve((_req, res) => json(res, 500, coded('IQP_E_INTERNAL', 'Internal error: boom')));
    const err = await failure(client(s.url).json({ method: 'GET', path: '/v1/packs' }));
    expect(s.requests).toHaveLength(1);
    expect(err.code).toBe('IQP_E_REGISTRY');
    expect(err.exitCode).toBe(3);
    expect(err.message).toContain('boom');
    expect(err.details).toMatchObject({ status: 500, registry_code: 'IQP_E_INTERNAL' });
  });

  it('maps unknown codes, non-JSON errors and non-JSON successes to IQP_E_REGISTRY', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/unknown') return json(res, 400, coded('IQP_E_FROM_THE_FUTURE', 'new'));
      if (req.url === '/teapot') return res.writeHead(418, { 'content-type': 'text/plain' }).end('short and stout');
      return res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login page</html>');
    });
    const c = client(s.url);
    expect(await failure(c.json({ method: 'GET', path: '/unknown' }))).toMatchObject({ code: 'IQP_E_REGISTRY', details: { status: 400, registry_code: 'IQP_E_FROM_THE_FUTURE' } });
    const teapot = await failure(c.json({ method: 'GET', path: '/teapot' }));
    expect(teapot.code).toBe('IQP_E_REGISTRY');
    expect(teapot.message).toContain('unexpected HTTP 418: short and stout');
    expect((await failure(c.json({ method: 'GET', path: '/html' }))).message).toContain('not JSON');
  });

  it('retries a refused connection, then reports IQP_E_NETWORK with exit 3', async () => {
    const s = await serve((_req, res) => json(res, 200, {}));
    const url = s.url;
    await s.close();
    const notes: string[] = [];
    const err = await failure(client(url, { onRetry: (m) => notes.push(m) }).json({ method: 'GET', path: '/v1/packs' }));
    expect(err.code).toBe('IQP_E_NETWORK');
    expect(err.exitCode).toBe(3);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.details).toMatchObject({ errno: 'ECONNREFUSED', attempts: FAST.attempts });
    expect(notes).toHaveLength(FAST.attempts - 1);
  });

  it('retries a connection that drops in the middle of the response body', async () => {
    const s = await serve((_req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        // Cut once the partial body is on its way (flushed to the socket), not after a guessed delay.
        res.write('{"partial":', () => res.socket?.destroy());
        return;
      }
      json(res, 200, { whole: true });
    });
    expect(await client(s.url).json({ method: 'GET', path: '/v1/packs' })).toEqual({ whole: true });
    expect(s.requests).toHaveLength(2);
  });

  it('re-opens a streamed body for every attempt, and reports a local read error as local', async () => {
    const s = await serve((_req, res, n) => (n < 3 ? res.writeHead(503).end() : json(res, 201, { result: 'created' })));
    let opened = 0;
    const body = () => {
      opened += 1;
      return Readable.from([Buffer.from('pack-'), Buffer.from('bytes')]);
    };
    const c = client(s.url);
    await c.json({ method: 'PUT', path: '/v1/admin/packs', auth: true, body, headers: { 'content-length': '10' }, expect: [201] });
    expect(opened).toBe(3);
    expect(s.requests.map((r) => r.body)).toEqual(['pack-bytes', 'pack-bytes', 'pack-bytes']);

    const broken = () =>
      new Readable({
        read() {
          this.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
        },
      });
    const err = await failure(c.json({ method: 'PUT', path: '/v1/admin/packs', auth: true, body: broken, headers: { 'content-length': '10' } }));
    expect(err.code).toBe('IQP_E_IO');
    expect(s.requests).toHaveLength(3);
  });
});

/** Starts an answer and never finishes it (the connection goes when the client gives up). */
function hold(res: ServerResponse, status: number, start: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.write(start);
}

/**
 * A json_timeout_ms clock the test moves: pass() is the limit going by for every deadline running,
 * expireNext() makes the next deadline started run out at once. No test waits for real time.
 */
function testClock() {
  const pending = new Set<() => void>();
  let expireNext = false;
  const timer: Timer = (_ms, fn) => {
    if (expireNext) {
      expireNext = false;
      const t = setImmediate(fn);
      return () => clearImmediate(t);
    }
    pending.add(fn);
    return () => pending.delete(fn);
  };
  return {
    timer,
    pass: () => {
      for (const fn of [...pending]) {
        pending.delete(fn);
        fn();
      }
    },
    expireNext: () => void (expireNext = true),
  };
}

describe('RegistryClient and json_timeout_ms', () => {
  const LIMIT = 100;

  it('cuts a JSON answer not complete in time, headers or body, however steadily it comes; retries, then IQP_E_NETWORK', async () => {
    const clock = testClock();
    let finished = 0;
    const s = await serve((req, res) => {
      res.on('finish', () => finished++);
      // Headers that never come, or a body that never ends; meanwhile the limit goes by.
      if (req.url !== '/silent') hold(res, 200, '{"versions":[');
      clock.pass();
    });
    const c = client(s.url, { jsonTimeoutMs: LIMIT, timer: clock.timer });
    for (const path of ['/v1/packs/x', '/silent']) {
      const err = await failure(c.json({ method: 'GET', path }));
      expect(err.code, path).toBe('IQP_E_NETWORK');
      expect(err.exitCode).toBe(3);
      expect(err.message).toContain(`json_timeout_ms (${LIMIT} ms)`);
      expect(err.details).toMatchObject({ attempts: FAST.attempts });
      expect(err.hint).toContain('IQP_JSON_TIMEOUT_MS');
    }
    // The client gave up on its own: no answer was ever complete.
    expect(finished).toBe(0);
    expect(s.requests.map((r) => r.url)).toEqual([...Array(FAST.attempts).fill('/v1/packs/x'), ...Array(FAST.attempts).fill('/silent')]);
    await s.close();
  });

  it('holds any error answer\'s body to it, a download\'s too', async () => {
    const clock = testClock();
    const s = await serve((_req, res) => {
      clock.expireNext();
      hold(res, 404, '{"error":');
    });
    const c = client(s.url, { jsonTimeoutMs: LIMIT, timer: clock.timer });
    const err = await failure(c.send({ method: 'GET', path: '/v1/packs/x/download' }, async () => 'never'));
    expect(err.code).toBe('IQP_E_NETWORK');
    expect(s.requests).toHaveLength(FAST.attempts);
    await s.close();
  });

  it('leaves a download\'s body alone, and times an upload\'s answer from its headers', async () => {
    const clock = testClock();
    let endDownload!: () => void;
    const s = await serve((req, res, n) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write('x');
        endDownload = () => res.end('y');
        return;
      }
      // The registry checks an upload before it answers, for longer than the limit.
      if (n === 2) {
        clock.pass();
        return json(res, 201, { result: 'created' });
      }
      clock.expireNext();
      hold(res, 201, '{"result":');
    });
    const c = client(s.url, { jsonTimeoutMs: LIMIT, timer: clock.timer });
    const text = await c.send({ method: 'GET', path: '/v1/packs/x/download' }, async (res) => {
      const chunks: string[] = [];
      for await (const chunk of res.body) {
        chunks.push(String(chunk));
        // The limit goes by with the body half read; then the registry sends the rest.
        if (chunks.length === 1) {
          clock.pass();
          endDownload();
        }
      }
      return chunks.join('');
    });
    expect(text.startsWith('x') && text.endsWith('y')).toBe(true);
    const upload = { method: 'PUT', path: '/v1/admin/packs', auth: true, body: () => Readable.from([Buffer.from('pack')]), headers: { 'content-length': '4' }, expect: [201] } as const;
    expect(await c.json(upload)).toEqual({ result: 'created' });
    expect((await failure(c.json(upload))).code).toBe('IQP_E_NETWORK');
    await s.close();
  });
});

describe('RegistryClient and the token', () => {
  it('sends the token only on requests that ask for it', async () => {
    const s = await serve((_req, res) => json(res, 200, {}));
    const c = client(s.url);
    await c.json({ method: 'GET', path: '/v1/packs' });
    await c.json({ method: 'GET', path: '/v1/admin/keys', auth: true });
    expect(s.requests.map((r) => r.auth)).toEqual([undefined, `Bearer ${TOKEN}`]);
  });

  it('refuses to send it to another origin', async () => {
    const registry = await serve((_req, res) => json(res, 200, {}));
    const elsewhere = await serve((_req, res) => json(res, 200, {}));
    const err = await failure(client(registry.url).json({ method: 'GET', path: `${elsewhere.url}/v1/admin/keys`, auth: true }));
    expect(err.code).toBe('IQP_E_REGISTRY');
    expect(elsewhere.requests).toHaveLength(0);
  });

  it('scrubs it from errors even when the server echoes it', async () => {
    const s = await serve((req, res) => json(res, 400, coded('IQP_E_USAGE', `bad header ${req.headers.authorization}`, { header: req.headers.authorization })));
    const err = await failure(client(s.url).json({ method: 'GET', path: '/v1/admin/keys', auth: true }));
    expect(JSON.stringify(err.toJSON())).not.toContain(TOKEN);
    expect(err.message).toContain('Bearer ***');
  });

  it('requires one for admin calls before any request, and keeps it out of debug lines', async () => {
    const s = await serve((_req, res) => json(res, 200, {}));
    const none = client(s.url, { token: null });
    expect(() => none.requireToken()).toThrow(expect.objectContaining({ code: 'IQP_E_TOKEN_REQUIRED', exitCode: 2 }));
    expect((await failure(none.json({ method: 'GET', path: '/v1/admin/keys', auth: true }))).code).toBe('IQP_E_TOKEN_REQUIRED');
    expect(s.requests).toHaveLength(0);
    const lines: string[] = [];
    await client(`http://user:pass@${s.url.slice('http://'.length)}`, { debug: (l) => lines.push(l) }).json({ method: 'GET', path: '/v1/admin/keys', auth: true });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/v1\/admin\/keys → 200 in \d+ ms$/);
    expect(lines.join('\n')).not.toContain(TOKEN);
  });
});

describe('readJson', () => {
  it('refuses a Content-Length over the cap before reading, and a body that grows past it as it does', async () => {
    const s = await serve((req, res) => {
      const body = JSON.stringify({ pad: 'x'.repeat(2000) });
      if (req.url === '/declared') return res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) }).end(body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(body.slice(0, 800));
      res.end(body.slice(800));
    });
    const c = client(s.url);
    const read = (path: string) => c.send({ method: 'GET', path }, (res) => readJson(res, path, 1000));
    expect(await failure(read('/declared'))).toMatchObject({ code: 'IQP_E_RESPONSE_TOO_LARGE', exitCode: 3, details: { limit: 1000, content_length: 2010 } });
    const streamed = await failure(read('/streamed'));
    expect(streamed.code).toBe('IQP_E_RESPONSE_TOO_LARGE');
    expect(streamed.details).toEqual({ limit: 1000 });
    expect(await c.send({ method: 'GET', path: '/declared' }, (res) => readJson<{ pad: string }>(res, 'ok', 2010))).toEqual({ pad: 'x'.repeat(2000) });
  });
});
