/**
 * The two sync peers as the benchmark drives them: push documents [from, to) in one request, pull
 * one page after a cursor. Bodies are built by joining the documents' JSON text (no client-side
 * JSON.stringify of a thousand objects while the server is measured); answers are parsed, as an
 * app would, and checked: every document stored, every page well-formed.
 *
 * - pouchdb-server: POST /<db>/_bulk_docs {docs: [{_id, ...payload}]} and
 *   GET /<db>/_changes?since=<seq>&limit=<n>&include_docs=true.
 * - iqp: POST /v1/sync/push and POST /v1/sync/pull (notes/sync-wire.md), one device and one access
 *   token per client.
 */
import { Agent, request } from 'undici';
import type { DocSet } from './sync-docs.js';

export interface SyncServer {
  readonly url: string;
  readonly pid: number;
  /** Every process of the server (a registry with workers: its primary and each worker). */
  readonly pids: readonly number[];
  /** CPU seconds its database server has used so far (PostgreSQL's processes), when it has one of its own. */
  readonly databaseCpu?: () => number | null;
  stderr(): string;
  stop(): Promise<void>;
}

export interface Page {
  /** Changes in the page. */
  readonly count: number;
  /** The cursor to send next (pouchdb: last_seq). */
  readonly cursor: string;
  /** True when the server says there is more after this page. */
  readonly more: boolean;
  /** Bytes of the response body. */
  readonly bytes: number;
}

/** What a client thread needs to make the same peer again (sync-load.ts): plain data, no secrets beyond the run's own tokens. */
export type PeerSpec =
  | { readonly kind: 'pouch'; readonly url: string; readonly db: string; readonly clients: number }
  | ({ readonly kind: 'ours'; readonly url: string; readonly clients: number } & OursClients);

/** One peer's client side: what the benchmark's loops call, in any thread. */
export interface PeerClient {
  readonly name: string;
  /** Pushes documents [from, to) as client `client`; throws unless every one was stored. */
  push(client: number, from: number, to: number): Promise<void>;
  /** One page after `cursor` (null: from the beginning) as client `client`. */
  pull(client: number, cursor: string | null, limit: number): Promise<Page>;
  /** 429/503 answers waited out (Retry-After) and retried. */
  readonly retries: () => number;
  close(): Promise<void>;
}

export interface SyncPeer extends PeerClient {
  readonly server: SyncServer;
  readonly spec: PeerSpec;
}

interface Answer {
  readonly status: number;
  readonly text: string;
}

/** A keep-alive HTTP client with one connection per benchmark client; waits out 429/503. */
export class Http {
  readonly #agent: Agent;
  #retries = 0;

  constructor(
    readonly base: string,
    connections: number,
  ) {
    this.#agent = new Agent({ connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 600_000, bodyTimeout: 600_000 });
  }

  get retries(): number {
    return this.#retries;
  }

  async send(method: 'GET' | 'POST' | 'PUT', path: string, body?: string, token?: string): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const r = await request(`${this.base}${path}`, {
        method,
        dispatcher: this.#agent,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        ...(body === undefined ? {} : { body }),
      });
      const text = await r.body.text();
      if ((r.statusCode === 429 || r.statusCode === 503) && attempt < 20) {
        this.#retries++;
        const after = Number(r.headers['retry-after'] ?? 1);
        await new Promise((res) => setTimeout(res, Math.min(30, Number.isFinite(after) ? after : 1) * 1000));
        continue;
      }
      return { status: r.statusCode, text };
    }
  }

  async json<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: string, token?: string, ok: readonly number[] = [200]): Promise<T> {
    const a = await this.send(method, path, body, token);
    if (!ok.includes(a.status)) throw new Error(`${method} ${path}: ${a.status} ${a.text.slice(0, 500)}`);
    return JSON.parse(a.text) as T;
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

export function pouchPeer(server: SyncServer, db: string, docs: DocSet, clients: number): SyncPeer {
  const spec: PeerSpec = { kind: 'pouch', url: server.url, db, clients };
  return { ...pouchClient(spec, docs), server, spec };
}

function pouchClient(spec: PeerSpec & { kind: 'pouch' }, docs: DocSet): PeerClient {
  const { db } = spec;
  const http = new Http(spec.url, spec.clients);
  return {
    name: 'pouchdb-server',
    async push(_client, from, to) {
      const parts: string[] = [];
      for (let i = from; i < to; i++) parts.push(`{"_id":"${docs.id(i)}",${docs.payload(i).slice(1)}`);
      const res = await http.json<Array<{ ok?: boolean; error?: string; reason?: string }>>('POST', `/${db}/_bulk_docs`, `{"docs":[${parts.join(',')}]}`, undefined, [201]);
      const bad = res.filter((r) => r.ok !== true);
      if (res.length !== to - from || bad.length > 0) throw new Error(`_bulk_docs stored ${res.length - bad.length} of ${to - from}: ${JSON.stringify(bad[0])}`);
    },
    async pull(_client, cursor, limit) {
      const a = await http.send('GET', `/${db}/_changes?since=${encodeURIComponent(cursor ?? '0')}&limit=${limit}&include_docs=true`);
      if (a.status !== 200) throw new Error(`_changes: ${a.status} ${a.text.slice(0, 500)}`);
      const page = JSON.parse(a.text) as { results: Array<{ doc?: unknown }>; last_seq: number | string };
      if (page.results.some((r) => r.doc === undefined)) throw new Error('_changes: a result without its doc');
      return { count: page.results.length, cursor: String(page.last_seq), more: page.results.length === limit, bytes: a.text.length };
    },
    retries: () => http.retries,
    close: () => http.close(),
  };
}

export interface OursOptions {
  readonly email: string;
  readonly password: string;
  readonly entity: string;
  readonly schemaVersion: number;
  /** A run-unique prefix for device ids (a device belongs to the first account that syncs with it). */
  readonly devicePrefix: string;
}

interface PushAnswer {
  results: Array<{ mutation_id: string; status: string; error?: { code: string; message: string } }>;
  head: number;
}

interface PullAnswer {
  changes: Array<{ entity: string; entity_id: string; op: string; payload: unknown; seq: number }>;
  cursor: string;
  has_more: boolean;
  head: number;
  reset?: { reason: string };
}

/** Client c pushes as device pushDevices[c] with pushTokens[c], and pulls as pullDevices[c]. */
interface OursClients {
  readonly entity: string;
  readonly schemaVersion: number;
  readonly pushDevices: readonly string[];
  readonly pullDevices: readonly string[];
  readonly pushTokens: readonly string[];
  readonly pullTokens: readonly string[];
}

/** Signs in one device per client (push devices and pull devices apart) and returns the peer. */
export async function oursPeer(server: SyncServer, docs: DocSet, clients: number, o: OursOptions): Promise<SyncPeer> {
  const http = new Http(server.url, 1);
  const login = async (device: string) =>
    (await http.json<{ access_token: string }>('POST', '/v1/auth/login', JSON.stringify({ email: o.email, password: o.password, device_id: device, device_name: 'iqp bench' }))).access_token;
  const pushDevices = Array.from({ length: clients }, (_, c) => `${o.devicePrefix}-push-${c}`);
  const pullDevices = Array.from({ length: clients }, (_, c) => `${o.devicePrefix}-pull-${c}`);
  const pushTokens: string[] = [];
  const pullTokens: string[] = [];
  try {
    for (const d of pushDevices) pushTokens.push(await login(d));
    for (const d of pullDevices) pullTokens.push(await login(d));
  } finally {
    await http.close();
  }
  const spec: PeerSpec = { kind: 'ours', url: server.url, clients, entity: o.entity, schemaVersion: o.schemaVersion, pushDevices, pullDevices, pushTokens, pullTokens };
  return { ...oursClient(spec, docs), server, spec };
}

function oursClient(o: PeerSpec & { kind: 'ours' }, docs: DocSet): PeerClient {
  const { pushDevices, pullDevices, pushTokens, pullTokens } = o;
  const http = new Http(o.url, o.clients);
  return {
    name: 'iqp sync',
    async push(client, from, to) {
      const parts: string[] = [];
      for (let i = from; i < to; i++) {
        parts.push(`{"mutation_id":"m-${i}","entity":"${o.entity}","entity_id":"${docs.id(i)}","op":"upsert","payload":${docs.payload(i)}}`);
      }
      const body = `{"device_id":"${pushDevices[client]}","device_name":"iqp bench","schema_version":${o.schemaVersion},"mutations":[${parts.join(',')}]}`;
      const res = await http.json<PushAnswer>('POST', '/v1/sync/push', body, pushTokens[client]);
      const bad = res.results.filter((r) => r.status !== 'applied');
      if (res.results.length !== to - from || bad.length > 0) throw new Error(`push applied ${res.results.length - bad.length} of ${to - from}: ${JSON.stringify(bad[0])}`);
    },
    async pull(client, cursor, limit) {
      const a = await http.send('POST', '/v1/sync/pull', JSON.stringify({ device_id: pullDevices[client], cursor, limit }), pullTokens[client]);
      if (a.status !== 200) throw new Error(`pull: ${a.status} ${a.text.slice(0, 500)}`);
      const page = JSON.parse(a.text) as PullAnswer;
      if (page.reset) throw new Error(`pull answered a reset (${page.reset.reason})`);
      if (!Array.isArray(page.changes) || typeof page.cursor !== 'string') throw new Error(`pull: unexpected answer ${a.text.slice(0, 300)}`);
      return { count: page.changes.length, cursor: page.cursor, more: page.has_more, bytes: a.text.length };
    },
    retries: () => http.retries,
    close: () => http.close(),
  };
}

/** The peer `spec` describes, for a client thread (its own connections, the same devices and tokens). */
export function peerClient(spec: PeerSpec, docs: DocSet): PeerClient {
  return spec.kind === 'pouch' ? pouchClient(spec, docs) : oursClient(spec, docs);
}
