/** Resumable downloads against a real HTTP server that drops connections and honours (or ignores) ranges. */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isIqpError } from '../errors.js';
import { downloadResumable } from './download.js';
import { RegistryClient } from './registry.js';
import type { RetryPolicy } from './retry.js';

const FILE = randomBytes(256 * 1024);
const SHA = createHash('sha256').update(FILE).digest('hex');
const dirs: string[] = [];
const servers: Server[] = [];
const clients: RegistryClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Options {
  /** Cut the connection after this many body bytes on the first `cuts` responses. */
  cutAfter?: number;
  cuts?: number;
  ignoreRange?: boolean;
  /** Answer ranged requests with this Content-Range instead of the right one. */
  contentRange?: string;
  /** Answer as an object store does: every single range served whatever If-Range says, under an ETag of its own. */
  objectStore?: boolean;
}

/**
 * Serves FILE like the registry's /download: strong ETag = sha256, single ranges, If-Range.
 * `progress` is the client's onProgress: a cut connection is cut once the client has taken in
 * the bytes sent before the cut (a stream destroyed by the cut drops what it has not read).
 */
async function fileServer(options: Options = {}): Promise<{ url: string; seen: { range?: string; ifRange?: string }[]; progress: (done: number) => void }> {
  const seen: { range?: string; ifRange?: string }[] = [];
  let cut: { at: number; destroy: () => void } | null = null;
  const server = createServer((req: IncomingMessage, res) => {
    seen.push({ ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers['if-range'] ? { ifRange: String(req.headers['if-range']) } : {}) });
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const useRange = m && !options.ignoreRange && (options.objectStore || req.headers['if-range'] === `"${SHA}"`);
    const start = useRange ? Number(m[1]) : 0;
    if (start >= FILE.length) {
      res.writeHead(416, { 'content-range': `bytes */${FILE.length}`, 'content-type': 'application/json' }).end('{"error":{"code":"IQP_E_RANGE_NOT_SATISFIABLE","message":"no"}}');
      return;
    }
    const body = FILE.subarray(start);
    res.writeHead(useRange ? 206 : 200, {
      etag: options.objectStore ? '"d41d8cd98f00b204e9800998ecf8427e-3"' : `"${SHA}"`,
      'content-length': String(body.length),
      ...(useRange ? { 'content-range': options.contentRange ?? `bytes ${start}-${FILE.length - 1}/${FILE.length}` } : {}),
    });
    if (options.cutAfter !== undefined && seen.length <= (options.cuts ?? 1)) {
      res.write(body.subarray(0, options.cutAfter));
      cut = { at: start + options.cutAfter, destroy: () => res.socket?.destroy() };
      return;
    }
    res.end(body);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const progress = (done: number) => {
    if (cut === null || done < cut.at) return;
    const { destroy } = cut;
    cut = null;
    destroy();
  };
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/file`, seen, progress };
}

function setup(url: string, retry: RetryPolicy = { attempts: 3, baseMs: 1, maxMs: 5 }) {
  const dir = mkdtempSync(join(tmpdir(), 'iqp-dl-'));
  dirs.push(dir);
  const client = new RegistryClient({ baseUrl: url.replace(/\/file$/, ''), token: null, retry });
  clients.push(client);
  return { part: join(dir, '.x.iqp.part'), client };
}

describe('downloadResumable', () => {
  it('resumes with Range and If-Range after the connection drops mid-body, more often than the retry limit', async () => {
    const { url, seen, progress } = await fileServer({ cutAfter: 40_000, cuts: 4 });
    const { part, client } = setup(url);
    const result = await downloadResumable(client, url, part, { size: FILE.length, sha256: SHA }, { onProgress: progress });
    expect(readFileSync(part).equals(FILE)).toBe(true);
    expect(result).toEqual({ resumedFrom: 0, restarted: false });
    expect(seen[0]).toEqual({});
    // Each retry asks for the rest; progress resets the attempt count, so four cuts do not exhaust three attempts.
    expect(seen).toHaveLength(5);
    const ranged = seen.filter((s) => s.range !== undefined);
    expect(ranged.length).toBeGreaterThan(0);
    expect(ranged.every((s) => s.ifRange === `"${SHA}"` && /^bytes=\d+-$/.test(s.range!))).toBe(true);
  });

  it('stops after the policy\'s attempts in all, even when each one gets further, and keeps the part', async () => {
    const { url, seen, progress } = await fileServer({ cutAfter: 1000, cuts: Number.POSITIVE_INFINITY });
    const { part, client } = setup(url, { attempts: 3, baseMs: 1, maxMs: 5, totalAttempts: 6 });
    const err = await downloadResumable(client, url, part, { size: FILE.length, sha256: SHA }, { onProgress: progress }).catch((e: unknown) => e);
    expect(isIqpError(err, 'IQP_E_NETWORK'), String(err)).toBe(true);
    expect((err as { details?: unknown }).details).toMatchObject({ attempts: 6 });
    expect(seen).toHaveLength(6);
    expect(readFileSync(part).equals(FILE.subarray(0, 6000))).toBe(true);
  });

  it('continues a part left by an earlier run, and restarts when the server sends the whole file', async () => {
    const ranged = await fileServer();
    const a = setup(ranged.url);
    writeFileSync(a.part, FILE.subarray(0, 1000));
    expect(await downloadResumable(a.client, ranged.url, a.part, { size: FILE.length, sha256: SHA })).toEqual({ resumedFrom: 1000, restarted: false });
    expect(ranged.seen).toEqual([{ range: 'bytes=1000-', ifRange: `"${SHA}"` }]);
    expect(readFileSync(a.part).equals(FILE)).toBe(true);

    const whole = await fileServer({ ignoreRange: true });
    const b = setup(whole.url);
    writeFileSync(b.part, FILE.subarray(0, 1000));
    await downloadResumable(b.client, whole.url, b.part, { size: FILE.length, sha256: SHA });
    expect(readFileSync(b.part).equals(FILE)).toBe(true);
  });

  it('downloads again from zero when a resumed part turns out corrupt', async () => {
    const { url, seen } = await fileServer();
    const { part, client } = setup(url);
    writeFileSync(part, randomBytes(5000));
    const notes: string[] = [];
    expect(await downloadResumable(client, url, part, { size: FILE.length, sha256: SHA }, { onNote: (n) => notes.push(n) })).toEqual({ resumedFrom: 5000, restarted: true });
    expect(readFileSync(part).equals(FILE)).toBe(true);
    expect(seen).toEqual([{ range: 'bytes=5000-', ifRange: `"${SHA}"` }, {}]);
    expect(notes.join('\n')).toContain('again from the start');
  });

  it('removes the part and fails with IQP_E_DOWNLOAD_MISMATCH when a fresh download does not match', async () => {
    const { url } = await fileServer();
    const { part, client } = setup(url);
    let err: unknown;
    try {
      await downloadResumable(client, url, part, { size: FILE.length, sha256: 'ab'.repeat(32) });
    } catch (e) {
      err = e;
    }
    expect(isIqpError(err, 'IQP_E_DOWNLOAD_MISMATCH')).toBe(true);
    expect(existsSync(part)).toBe(false);
  });

  it('downloads again from zero when a resume is answered with other bytes than asked for', async () => {
    const { url, seen } = await fileServer({ contentRange: `bytes 0-${FILE.length - 1}/${FILE.length}` });
    const { part, client } = setup(url);
    writeFileSync(part, FILE.subarray(0, 1000));
    expect(await downloadResumable(client, url, part, { size: FILE.length, sha256: SHA })).toEqual({ resumedFrom: 1000, restarted: true });
    expect(seen).toEqual([{ range: 'bytes=1000-', ifRange: `"${SHA}"` }, {}]);
    expect(readFileSync(part).equals(FILE)).toBe(true);
  });

  it('refuses a Content-Length other than the announced size before writing a byte', async () => {
    const { url } = await fileServer();
    const { part, client } = setup(url);
    let err: unknown;
    try {
      await downloadResumable(client, url, part, { size: FILE.length + 1, sha256: SHA });
    } catch (e) {
      err = e;
    }
    expect(isIqpError(err, 'IQP_E_DOWNLOAD_MISMATCH')).toBe(true);
    expect((err as { details?: unknown }).details).toEqual({ content_length: String(FILE.length), expected: FILE.length + 1 });
    expect(existsSync(part)).toBe(false);
  });

  describe('redirected to object storage', () => {
    /** An object store as S3 answers: plain single ranges, its own ETag (not the pack's sha256), If-Range not looked at. */
    const objectStore = (options: { cutAfter?: number } = {}) => fileServer({ ...options, objectStore: true });

    /** A registry whose /file answers `status` with each of `locations` in turn (the last one again after that). */
    async function redirecting(locations: readonly (string | null)[], status = 302) {
      let asked = 0;
      const server = createServer((_req, res) => {
        const location = locations[Math.min(asked++, locations.length - 1)];
        res.writeHead(status, location === null ? {} : { location }).end();
      });
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/file`, asked: () => asked };
    }

    it('follows the redirect, resumes there with a plain Range after the connection drops, and checks the pack', async () => {
      const store = await objectStore({ cutAfter: 50_000 });
      for (const status of [302, 307]) {
        store.seen.length = 0;
        const registry = await redirecting([store.url], status);
        const { part, client } = setup(registry.url);
        const notes: string[] = [];
        expect(await downloadResumable(client, registry.url, part, { size: FILE.length, sha256: SHA }, { onProgress: store.progress, onNote: (n) => notes.push(n) })).toEqual({ resumedFrom: 0, restarted: false });
        expect(readFileSync(part).equals(FILE)).toBe(true);
        expect(registry.asked(), 'the registry is asked once; the resume goes to the object store').toBe(1);
        expect(notes.join('\n')).toContain(new URL(store.url).origin);
      }
    });

    it('continues a part left by an earlier run through the redirect, without If-Range', async () => {
      const store = await objectStore();
      const registry = await redirecting([store.url]);
      const { part, client } = setup(registry.url);
      writeFileSync(part, FILE.subarray(0, 7000));
      expect(await downloadResumable(client, registry.url, part, { size: FILE.length, sha256: SHA })).toEqual({ resumedFrom: 7000, restarted: false });
      expect(store.seen).toEqual([{ range: 'bytes=7000-' }]);
      expect(readFileSync(part).equals(FILE)).toBe(true);
    });

    it('asks the registry again when a part resumed through the redirect does not match', async () => {
      const store = await objectStore();
      const registry = await redirecting([store.url]);
      const { part, client } = setup(registry.url);
      writeFileSync(part, randomBytes(3000));
      expect(await downloadResumable(client, registry.url, part, { size: FILE.length, sha256: SHA })).toEqual({ resumedFrom: 3000, restarted: true });
      expect(registry.asked()).toBe(2);
      expect(store.seen).toEqual([{ range: 'bytes=3000-' }, {}]);
      expect(readFileSync(part).equals(FILE)).toBe(true);
    });

    it('follows two redirects but not a third, nor one without a Location or to another scheme, writing nothing', async () => {
      const store = await objectStore();
      const edge = await redirecting([store.url]);
      const cdn = await redirecting([edge.url]);
      const two = setup(cdn.url);
      await downloadResumable(two.client, cdn.url, two.part, { size: FILE.length, sha256: SHA });
      expect(readFileSync(two.part).equals(FILE)).toBe(true);

      const loop = await redirecting([cdn.url]);
      for (const [url, pattern] of [
        [loop.url, /redirected more than 2 times/],
        [(await redirecting([null])).url, /without a Location/],
        [(await redirecting(['file:///etc/passwd'])).url, /only http and https/],
        [(await redirecting(['http://[::1'])).url, /not a URL/],
      ] as const) {
        const { part, client } = setup(url);
        const err = await downloadResumable(client, url, part, { size: FILE.length, sha256: SHA }).catch((e: unknown) => e);
        expect(isIqpError(err, 'IQP_E_REGISTRY'), String(err)).toBe(true);
        expect((err as Error).message).toMatch(pattern);
        expect(existsSync(part) ? readFileSync(part).length : 0, 'nothing written').toBe(0);
      }
    });
  });
});
