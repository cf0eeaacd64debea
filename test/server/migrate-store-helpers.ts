/**
 * What the migrate-store tests share: an embedded registry populated through its real API (packs,
 * keys, tokens, a revoked token, releases with a profile, a deprecation, and with the auth and sync
 * plugins an account, its device and synced data), what that registry answered, read again from
 * the registry it became; a PostgreSQL schema owned by a role that is not a superuser (as on a
 * managed database); the settings that point `iqp` at it and a bucket; and an S3 front that fails
 * uploads on demand, to interrupt a copy half-way.
 */
import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { device } from '../sync/support.js';
import { syncHarness } from '../sync/support.js';
import { freshSchema, type TestSchema } from '../postgres/harness.js';
import { call, newKey, registerKey, tempDir, type BuiltPack } from './helpers.js';
import { deprecateRelease, draftWith, publishPack, publishRelease, type ReleaseRegistry } from './release-helpers.js';
import { S3RVER_CREDENTIALS } from './s3rver.js';
import { post } from '../auth/support.js';

export interface RegistryAnswers {
  readonly available: unknown;
  readonly latest: unknown;
  readonly channels: unknown;
  readonly audit: readonly { id: number }[];
  /** The account's synced data, pulled from the start. */
  readonly pull: { changes: unknown[]; conflicts: unknown[] };
}

export interface PopulatedSource {
  readonly dataDir: string;
  readonly admin: string;
  readonly publisher: string;
  /** A token revoked before the move: still refused after it. */
  readonly revoked: string;
  readonly packs: readonly BuiltPack[];
  readonly email: string;
  readonly password: string;
  /** An access token issued before the move, and the device it was issued for. */
  readonly accessToken: string;
  readonly deviceId: string;
  readonly releaseIds: readonly number[];
  readonly answers: RegistryAnswers;
}

/** Absolute links name the server that answered: the same registry on another port answers the same otherwise. */
function withoutBase(value: unknown, base: string): unknown {
  return JSON.parse(JSON.stringify(value).replaceAll(base, '<registry>'));
}

async function ok(base: string, path: string, token?: string): Promise<any> {
  const r = await call(base, path, token ? { token } : {});
  expect(r.status, `${path}: ${r.body.toString('utf8').slice(0, 300)}`).toBe(200);
  return r.json();
}

/** What apps, operators and a synced device get from the registry at `base`. */
export async function registryAnswers(base: string, admin: string, accessToken: string, deviceId: string): Promise<RegistryAnswers> {
  const audit: { id: number }[] = [];
  for (let cursor: string | null = null; ; ) {
    const page: { entries: { id: number }[]; paging: { next_cursor: string | null; has_more: boolean } } = await ok(base, `/v1/admin/audit?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, admin);
    audit.push(...page.entries);
    if (!page.paging.has_more) break;
    cursor = page.paging.next_cursor;
  }
  const pulled = await post(`${base}/v1/sync/pull`, { device_id: deviceId, cursor: null }, accessToken);
  expect(pulled.status, JSON.stringify(pulled.body)).toBe(200);
  return {
    available: withoutBase(await ok(base, '/v1/packs/available'), base),
    latest: withoutBase(await ok(base, '/v1/releases/latest?channel=stable'), base),
    channels: await ok(base, '/v1/channels'),
    audit,
    pull: { changes: pulled.body.changes, conflicts: pulled.body.conflicts },
  };
}

/**
 * An embedded registry (registry.sqlite and blobs/ in a temp data directory) with the auth and
 * sync plugins, filled through its API, then stopped: the source a migrate-store moves.
 */
export async function populateSource(): Promise<PopulatedSource> {
  const h = await syncHarness();
  try {
    const tokens = h.running.registry.services.tokens;
    const admin = (await tokens.create('admin', 'ops', 'test')).token;
    const publisher = (await tokens.create('publisher', 'ci', 'test')).token;
    const old = await tokens.create('publisher', 'old-ci', 'test');
    await tokens.revoke(old.record.id, 'test');
    const reg: ReleaseRegistry = {
      url: h.base,
      dataDir: h.dir,
      running: h.running,
      admin,
      publisher,
      logs: [],
      close: async () => {},
      packKey: newKey(),
      releaseKey: newKey(),
      work: tempDir('iqp-migrate-packs-'),
    };
    await registerKey(h.base, admin, reg.packKey);
    await registerKey(h.base, admin, reg.releaseKey, 'release');
    const packs = [
      await publishPack(reg, 'migrate.text', '0.9.0'),
      await publishPack(reg, 'migrate.text', '1.0.0'),
      await publishPack(reg, 'migrate.text', '1.1.0'),
      await publishPack(reg, 'migrate.audio', '2.0.0'),
    ];
    const [withdrawn, text1, text2, audio] = packs as [BuiltPack, BuiltPack, BuiltPack, BuiltPack];
    expect((await call(h.base, `/v1/admin/packs/${withdrawn.package_id}/${withdrawn.version}/deprecate`, { method: 'POST', token: publisher, json: { message: 'use 1.x' } })).status).toBe(200);
    expect((await call(h.base, '/v1/admin/release-profiles/phones', { method: 'PUT', token: publisher, json: { roles: ['text', 'audio'], description: 'the phone app' } })).status).toBe(200);
    const first = await draftWith(reg, '2025.1', { text: text1, audio });
    await publishRelease(reg, first.id);
    await deprecateRelease(reg, first.id, 'superseded');
    const second = await draftWith(reg, '2025.2', { text: text2, audio });
    await publishRelease(reg, second.id);
    const draft = await call(h.base, '/v1/admin/releases', { method: 'POST', token: publisher, json: { name: '2025.3', channel: 'stable', min_app_version: '1.0.0', profile: 'phones' } });
    expect(draft.status, draft.body.toString('utf8')).toBe(201);

    const phone = await device(h, 'ann@example.org', 'ann-phone-1', 'Ann’s phone');
    const pushed = await phone.push([
      { mutation_id: phone.mid(), entity: 'card', entity_id: 'c1', op: 'upsert', payload: { front: 'سلام', back: 'peace', n: 1 } },
      { mutation_id: phone.mid(), entity: 'card', entity_id: 'c2', op: 'upsert', payload: { front: 'two', n: 2 } },
      { mutation_id: phone.mid(), entity: 'deck', entity_id: 'd1', op: 'upsert', payload: { name: 'Daily' } },
    ]);
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(200);
    const again = await phone.push([
      { mutation_id: phone.mid(), entity: 'card', entity_id: 'c1', op: 'patch', payload: { n: 3 }, base_version: 1 },
      { mutation_id: phone.mid(), entity: 'card', entity_id: 'c2', op: 'delete' },
    ]);
    expect(again.status, JSON.stringify(again.body)).toBe(200);

    const answers = await registryAnswers(h.base, admin, phone.token, phone.id);
    return {
      dataDir: h.dir,
      admin,
      publisher,
      revoked: old.token,
      packs,
      email: 'ann@example.org',
      password: 'x7#kq2Lm-river-stone',
      accessToken: phone.token,
      deviceId: phone.id,
      releaseIds: [first.id, second.id, draft.json<{ id: number }>().id],
      answers,
    };
  } finally {
    await h.close();
  }
}

export interface TargetDatabase {
  readonly schema: TestSchema;
  /** postgres://role:password@…?options=-c search_path=<schema>: the role owns the schema and nothing else. */
  readonly url: string;
  readonly password: string;
  /** Tables of the schema with their row counts. */
  rows(): Promise<Record<string, number>>;
  drop(): Promise<void>;
}

/**
 * A fresh schema owned by a new login role that is not a superuser, as a managed PostgreSQL gives
 * an application: iqp must migrate and fill it with what an owner may do, nothing more.
 */
export async function targetDatabase(): Promise<TargetDatabase> {
  const schema = await freshSchema();
  const role = `r${schema.name}`;
  const password = `pw-${randomBytes(9).toString('hex')}`;
  await schema.sql(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD '${password}'; ALTER SCHEMA ${schema.name} OWNER TO ${role}`);
  const url = new URL(schema.options().connectionString);
  url.username = role;
  url.password = password;
  url.searchParams.set('options', `-c search_path=${schema.name}`);
  return {
    schema,
    url: url.href,
    password,
    async rows() {
      const tables = (await schema.sql(`SELECT tablename FROM pg_tables WHERE schemaname = '${schema.name}' ORDER BY tablename`)).rows.map((r) => r.tablename as string);
      const out: Record<string, number> = {};
      for (const t of tables) out[t] = Number((await schema.sql(`SELECT count(*) AS n FROM ${schema.name}.${t}`)).rows[0].n);
      return out;
    },
    async drop() {
      await schema.drop();
      await schema.sql(`DROP ROLE IF EXISTS ${role}`);
    },
  };
}

/** The settings of a registry on `database` (a postgres:// URL) and/or a bucket of s3rver at `endpoint`. */
export function targetEnv(target: { database?: string; bucket?: string; endpoint?: string }): Record<string, string> {
  return {
    ...S3RVER_CREDENTIALS,
    ...(target.database ? { IQP_DATABASE_URL: target.database } : {}),
    ...(target.bucket
      ? { IQP_BLOB_STORE: 's3', IQP_S3_ENDPOINT: target.endpoint!, IQP_S3_BUCKET: target.bucket, IQP_S3_PREFIX: 'packs/', IQP_S3_FORCE_PATH_STYLE: 'true', IQP_S3_CHECKSUMS: 'when_required' }
      : {}),
  };
}

export interface FaultyFront {
  readonly endpoint: string;
  /** Object uploads (PUT) let through so far. */
  readonly uploads: number;
  close(): Promise<void>;
}

/**
 * An HTTP front for s3rver that passes everything through but answers every object upload after
 * the first `allowed` with 500 InternalError, as a store that falls over mid-copy does.
 */
export async function faultyFront(upstream: string, allowed: number): Promise<FaultyFront> {
  const target = new URL(upstream);
  let uploads = 0;
  const server: Server = createServer((req, res) => {
    const isUpload = req.method === 'PUT' && /^\/[^/]+\/.+/.test(new URL(req.url ?? '/', 'http://front').pathname);
    if (isUpload && uploads >= allowed) {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>injected failure</Message></Error>');
      return;
    }
    const out = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (isUpload && answer.statusCode === 200) uploads += 1;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get uploads() {
      return uploads;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
