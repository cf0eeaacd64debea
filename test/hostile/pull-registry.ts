/**
 * A registry that lies, for `iqp pull` tests: a plain node:http server on 127.0.0.1:0 whose every
 * answer the test writes by hand, recording what it was asked and how many body bytes it sent.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll } from 'vitest';
import { iqp, type RunResult } from '../e2e/helpers.js';

export interface FakeRegistry {
  readonly url: string;
  /** `METHOD /path?query` of every request, in order, with its Range header when there was one. */
  readonly hits: string[];
  /** Body bytes handed to the socket by `pump`, over all responses. */
  sent(): number;
}

export type Route = (req: IncomingMessage, res: ServerResponse, registry: FakeRegistry & { count(bytes: number): void }) => void;

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

export async function fakeRegistry(route: Route): Promise<FakeRegistry> {
  const hits: string[] = [];
  let sent = 0;
  const registry = { url: '', hits, sent: () => sent, count: (bytes: number) => void (sent += bytes) };
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}${req.headers.range ? ` range=${req.headers.range}` : ''}`);
    route(req, res, registry);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  registry.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closers.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return registry;
}

export function sendJson(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/**
 * Writes `chunk` over and over, as fast as the client reads, until `total` bytes are out or the
 * client hangs up; then ends the response (`end`) or cuts the connection (`cut`).
 */
export function pump(res: ServerResponse, registry: { count(bytes: number): void }, chunk: Buffer, total: number, then: 'end' | 'cut'): void {
  let left = total;
  let gone = false;
  res.on('close', () => (gone = true));
  const write = (): void => {
    while (left > 0 && !gone) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      registry.count(piece.length);
      if (!res.write(piece)) {
        res.once('drain', write);
        return;
      }
    }
    if (gone) return;
    // A cut is a FIN after the bytes already written, not a reset that could drop them on the way.
    if (then === 'end') res.end();
    else res.socket?.end();
  };
  write();
}

/** What GET /v1/packs/{id}/{version}/manifest says; only the fields pull reads matter. */
export function manifestAnswer(id: string, version: string, facts: { size_bytes: number; sha256: string; signer_key_id?: string; download_url?: string }) {
  return {
    format: 1,
    package_id: id,
    package_type: 'translation',
    version,
    language_code: 'en',
    name: 'Demo',
    description: 'Demo',
    min_app_version: '1.0.0',
    created_at: '2026-01-01T00:00:00Z',
    files: [],
    tables: [],
    status: 'published',
    deprecated_message: null,
    published_at: '2026-01-01T00:00:00Z',
    signer_key_id: facts.signer_key_id ?? '0123456789ABCDEF',
    signature: '',
    manifest_json: '{}',
    download_url: facts.download_url ?? `/v1/packs/${id}/download?version=${version}`,
    size_bytes: facts.size_bytes,
    sha256: facts.sha256,
  };
}

/**
 * The real `iqp pull … --json` against `registry`, with a heap small enough that buffering a large
 * answer would crash it instead of passing by luck.
 */
export function pull(registry: FakeRegistry, args: readonly string[], cwd: string, timeoutMs = 60_000, env: Record<string, string> = {}): Promise<RunResult> {
  return iqp(['pull', ...args, '--registry', registry.url, '--json'], {
    cwd,
    timeoutMs,
    env: { IQP_RETRY_BASE_MS: '1', NODE_OPTIONS: `--max-old-space-size=${HEAP_MB}`, ...env },
  });
}

/**
 * Starts a 200 JSON answer whose body never ends: a space (JSON whitespace) every few milliseconds,
 * far inside any gap between chunks a client allows, until the client hangs up.
 */
export function drip(res: ServerResponse, registry: { count(bytes: number): void }, start: string): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write(start);
  registry.count(start.length);
  const timer = setInterval(() => {
    res.write(' ');
    registry.count(1);
  }, 5);
  res.on('close', () => clearInterval(timer));
}

/** Old-space heap for the pulling process, in MiB: well under the JSON cap, well over what a pull needs. */
export const HEAP_MB = 40;
