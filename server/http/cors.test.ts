import { afterEach, describe, expect, it } from 'vitest';
import { serverConfig } from '../config.js';
import { type RunningServer, startServer } from '../start.js';
import { tempDir } from '../../test/e2e/helpers.js';
import { origins } from '../../src/cli/setting-types.js';

let running: RunningServer | null = null;
afterEach(async () => {
  await running?.close();
  running = null;
});

async function serve(corsOrigins: string[]): Promise<string> {
  running = await startServer(serverConfig({ dataDir: tempDir('iqp-cors-'), host: '127.0.0.1', port: 0, corsOrigins }), () => {});
  return running.url;
}

describe('CORS', () => {
  it('lets a listed origin read answers (cached fast-path reads too) and answers its preflights', async () => {
    const url = await serve(['https://cards.example']);
    const headers = { origin: 'https://cards.example' };
    for (let i = 0; i < 2; i++) {
      // The second read is served from the cache, before Express.
      const r = await fetch(`${url}/v1/packs/available?app_version=1.0.0`, { headers });
      expect(r.status).toBe(200);
      expect(r.headers.get('access-control-allow-origin')).toBe('https://cards.example');
      expect(r.headers.get('access-control-expose-headers')).toContain('Retry-After');
      expect(r.headers.get('vary')).toContain('Origin');
    }
    const pre = await fetch(`${url}/v1/sync/push`, { method: 'OPTIONS', headers: { ...headers, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Authorization.*Content-Type/);
    const error = await fetch(`${url}/v1/nope`, { headers });
    expect([error.status, error.headers.get('access-control-allow-origin')]).toEqual([404, 'https://cards.example']);
  });

  it('gives other origins, and every origin when none is configured, no CORS headers', async () => {
    const url = await serve(['https://cards.example']);
    const other = await fetch(`${url}/v1/packs/available?app_version=1.0.0`, { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await fetch(`${url}/v1/sync/push`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(pre.headers.get('access-control-allow-methods')).toBeNull();
    await running!.close();
    running = null;
    const none = await serve([]);
    expect((await fetch(`${none}/v1/health`, { headers: { origin: 'https://cards.example' } })).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('takes origins, or *, and refuses anything with a path or another scheme', () => {
    const FROM = { kind: 'env', name: 'IQP_CORS_ORIGINS' } as never;
    expect(origins.parse('https://a.example, http://localhost:5173', FROM)).toEqual(['https://a.example', 'http://localhost:5173']);
    expect(origins.parse('*', FROM)).toEqual(['*']);
    for (const bad of ['https://a.example/app', 'ftp://a.example', 'a.example', 'https://a.example?x=1']) expect(() => origins.parse(bad, FROM), bad).toThrow(/origins/);
  });
});
