/**
 * HTTP for the registry's server-side tests: fetch for ordinary calls, and raw sockets where the
 * exact bytes matter (request headers as sent, responses as received, bodies cut off on purpose).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import express, { type Router } from 'express';
import { afterAll, expect } from 'vitest';
import { CATALOG, type ErrorCode } from '../../src/errors.js';
import { errorHandler } from '../../server/http/errors.js';

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  json<T = any>(): T;
}

export interface CallOptions {
  readonly method?: string;
  readonly token?: string;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array | string;
  /** Sent as application/json. */
  readonly json?: unknown;
}

/** One request with fetch; the whole body is read. */
export async function call(base: string, path: string, options: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  let body: Uint8Array | string | undefined = options.body;
  if (options.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(options.json);
  }
  const res = await fetch(`${base}${path}`, { method: options.method ?? 'GET', headers, ...(body !== undefined ? { body } : {}) });
  const bytes = Buffer.from(await res.arrayBuffer());
  return {
    status: res.status,
    headers: res.headers,
    body: bytes,
    json() {
      try {
        return JSON.parse(bytes.toString('utf8'));
      } catch {
        throw new Error(`${options.method ?? 'GET'} ${path}: ${res.status} body is not JSON: ${bytes.toString('utf8').slice(0, 300)}`);
      }
    },
  };
}

/** PUT /v1/admin/packs with the pack's bytes. */
export function upload(base: string, token: string, pack: string | Uint8Array, headers: Record<string, string> = {}): Promise<Reply> {
  const body = typeof pack === 'string' ? readFileSync(pack) : pack;
  return call(base, '/v1/admin/packs', { method: 'PUT', token, body, headers: { 'content-type': 'application/octet-stream', ...headers } });
}

/** Asserts the registry's error shape (JSON `{error:{code,message}}`, no stack trace) and returns the code. */
export function errorCode(reply: Reply): string {
  const type = reply.headers.get('content-type') ?? '';
  if (!type.startsWith('application/json')) throw new Error(`error response is ${type || 'untyped'}: ${reply.body.toString('utf8').slice(0, 200)}`);
  const doc = reply.json<{ error?: { code?: unknown; message?: unknown } }>();
  if (typeof doc.error?.code !== 'string' || typeof doc.error.message !== 'string') throw new Error(`no {error:{code,message}}: ${reply.body.toString('utf8')}`);
  if (/\n\s+at /.test(reply.body.toString('utf8')) || /\.[jt]s:\d+/.test(reply.body.toString('utf8'))) throw new Error(`stack trace in body: ${reply.body.toString('utf8')}`);
  return doc.error.code;
}

/** Asserts a coded error: the code's HTTP status and the JSON error shape with that code. */
export function expectError(reply: Reply, code: ErrorCode, what = ''): void {
  expect(reply.status, `${what} ${reply.body.toString('utf8').slice(0, 300)}`).toBe(CATALOG[code].http);
  expect(errorCode(reply), what).toBe(code);
}

/**
 * Every item of a keyset-paged listing: follows `paging.next_cursor` from `path` (which sets
 * ?limit=) to the end, checking that no page is over the limit.
 */
export async function collectPages<T = any>(base: string, path: string, field: string, token?: string): Promise<T[]> {
  const limit = Number(new URL(path, base).searchParams.get('limit'));
  const items: T[] = [];
  let url = path;
  for (;;) {
    const r = await call(base, url, token ? { token } : {});
    expect(r.status, `${url}: ${r.body.toString('utf8').slice(0, 300)}`).toBe(200);
    const page = r.json<{ paging: { limit: number; next_cursor: string | null; has_more: boolean } } & Record<string, T[]>>();
    expect(page.paging.limit).toBe(limit);
    expect(page[field]!.length).toBeLessThanOrEqual(limit);
    items.push(...page[field]!);
    if (!page.paging.has_more) return items;
    url = `${path}&cursor=${encodeURIComponent(page.paging.next_cursor!)}`;
  }
}

export interface RawResponse {
  readonly status: number;
  readonly statusText: string;
  /** Lower-case names; repeated fields joined with ", ". */
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  /** Every byte received, headers included. */
  readonly raw: Buffer;
}

export function parseRawResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`incomplete response head: ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`);
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(statusLine!);
  if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  let body = raw.subarray(end + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  return { status: Number(m[1]), statusText: m[2]!, headers, body, raw };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) throw new Error('truncated chunked body');
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (size === 0) return Buffer.concat(parts);
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

function hostPort(base: string): { host: string; port: number } {
  const u = new URL(base);
  return { host: u.hostname, port: Number(u.port) };
}

/**
 * Sends exactly `head` (a request line and header lines, without the blank line) plus `body` on a
 * fresh socket, with Connection: close added, and returns every byte the server sent until it closed.
 */
export function rawRequest(base: string, head: string | Buffer, body?: Buffer): Promise<RawResponse> {
  const { host, port } = hostPort(base);
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', reject);
    socket.on('end', () => {
      try {
        resolve(parseRawResponse(Buffer.concat(chunks)));
      } catch (err) {
        reject(err as Error);
      }
    });
    const headBytes = typeof head === 'string' ? Buffer.from(head, 'latin1') : head;
    socket.write(Buffer.concat([headBytes, Buffer.from('\r\nConnection: close\r\n\r\n', 'latin1'), body ?? Buffer.alloc(0)]));
  });
}

/** A GET or HEAD with the given extra header lines, as raw bytes. */
export function rawGet(base: string, path: string, headerLines: readonly (string | Buffer)[] = [], method = 'GET'): Promise<RawResponse> {
  const { host, port } = hostPort(base);
  const parts: Buffer[] = [Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: ${host}:${port}`, 'latin1')];
  for (const line of headerLines) parts.push(Buffer.from('\r\n', 'latin1'), typeof line === 'string' ? Buffer.from(line, 'latin1') : line);
  return rawRequest(base, Buffer.concat(parts));
}

/**
 * Opens a socket and sends `head` (request line and headers, ending in the blank line) and no
 * body; `response` resolves as soon as one whole response has arrived, with the socket still open,
 * so a test can tell that the server answered without waiting for the body.
 */
export function openRequest(base: string, head: string): { socket: Socket; response: Promise<RawResponse> } {
  const { host, port } = hostPort(base);
  const socket = connect(port, host);
  const response = new Promise<RawResponse>((resolve, reject) => {
    let data = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`socket closed before a whole response: ${JSON.stringify(data.toString('latin1'))}`)));
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(data.subarray(0, end).toString('latin1'))?.[1] ?? 0);
      if (data.length >= end + 4 + length) resolve(parseRawResponse(data.subarray(0, end + 4 + length)));
    });
  });
  response.catch(() => {}); // a test that hangs up on purpose never awaits it
  socket.write(head);
  return { socket, response };
}

export type UploadOutcome = { readonly status: number; readonly body: string } | { readonly error: string };

/**
 * PUT /v1/admin/packs with node:http, writing `body` in `chunk`-byte pieces with `between` awaited between
 * them: with `contentLength: false` the body goes chunked. Connection failures resolve as
 * `{ error }` (the server may answer and close before the whole body is written). `onWritten` is
 * called as each piece is handed to the socket, for tests that act at a point in the body.
 */
export function streamUpload(
  base: string,
  token: string,
  body: Buffer,
  options: { contentLength: boolean; chunk?: number; between?: () => Promise<unknown>; onWritten?: () => void },
): Promise<UploadOutcome> {
  const u = new URL(base);
  const chunkSize = options.chunk ?? 64 * 1024;
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' };
    if (options.contentLength) headers['content-length'] = body.length;
    const req = request({ host: u.hostname, port: u.port, method: 'PUT', path: '/v1/admin/packs', agent: false, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('error', (err) => resolve({ error: err.message }));
    let at = 0;
    const next = (): void => {
      if (at >= body.length) return void req.end();
      const piece = body.subarray(at, at + chunkSize);
      at += piece.length;
      req.write(piece, () => {
        options.onWritten?.();
        if (options.between) options.between().then(next, next);
        else setImmediate(next);
      });
    };
    next();
  });
}

const routerServers: { close(): void }[] = [];
afterAll(() => {
  for (const s of routerServers.splice(0)) s.close();
});

/** `router` alone behind the registry's error handler, on 127.0.0.1 with a random port (closed after the file's tests): its base URL. */
export async function serveRouter(router: Router): Promise<string> {
  const app = express();
  app.use(router);
  app.use(errorHandler(() => {}));
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  routerServers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
