/**
 * Helpers for the release tests over HTTP: a registry with a pack key and a release key, packs
 * built and uploaded, releases created, attached, signed with the format library (as the CLI
 * signs them, on the client) and published, and a snapshot of everything a release change could
 * touch in registry.sqlite, to prove that a refused request changed nothing.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { createApp, type Logger } from '../../server/app.js';
import type { ServerConfig } from '../../server/config.js';
import { openStores } from '../../server/datadir.js';
import type { RunningServer, StartOptions } from '../../server/start.js';
import type { ReleaseStore } from '../../server/stores/release-types.js';
import { type ReleaseManifest, type ReleaseManifestBody, signReleaseManifest } from '../../src/pack/release-manifest.js';
import { rfc3339 } from '../../src/client/releases.js';
import { buildTemplatePack, type BuiltPack, call, type Reply, newKey, registerKey, startRegistry, tempDir, type TestKey, type TestRegistry, upload, withDatabase } from './helpers.js';

export interface ReleaseRegistry extends TestRegistry {
  readonly packKey: TestKey;
  readonly releaseKey: TestKey;
  readonly work: string;
}

/**
 * The release store with every call answered on a later turn of the event loop, as a store over
 * the network (the planned Postgres adapter) answers: concurrent requests then interleave inside
 * the service, which the synchronous SQLite store never lets them do.
 */
function answeringLater(store: ReleaseStore): ReleaseStore {
  return new Proxy(store, {
    get(target, name) {
      const value: unknown = Reflect.get(target, name);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        await new Promise((r) => setImmediate(r));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** What server/start.ts's startServer does, with the release store answering later. */
async function startWithLaterReleaseStore(config: ServerConfig, log?: Logger, options: StartOptions = {}): Promise<RunningServer> {
  const stores = await openStores(config.dataDir, 'test');
  const registry = createApp({ config, meta: stores.meta, blobs: stores.blobs, releases: answeringLater(stores.releases), ...(log ? { log } : {}), validateResponses: options.validateResponses ?? false });
  const server = createServer(registry.handler).listen(config.port, config.host);
  await once(server, 'listening');
  const close = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await stores.meta.close();
  };
  return { url: `http://${config.host}:${(server.address() as AddressInfo).port}`, server, registry, stores, recovery: null, close };
}

/**
 * A fresh registry with a pack key (`packKey`, or a new one) and (unless `releaseKey: false`) a
 * registered release key; `slowStore` puts the release store behind answeringLater. Packs built
 * once with the same `packKey` can be uploaded to a fresh registry per test (uploadPack).
 */
export async function startReleaseRegistry(
  options: { config?: Partial<ServerConfig>; releaseKey?: boolean; slowStore?: boolean; packKey?: TestKey } = {},
): Promise<ReleaseRegistry> {
  const packKey = options.packKey ?? newKey();
  const releaseKey = newKey();
  const reg = await startRegistry({ keys: [packKey], ...(options.config ? { config: options.config } : {}), ...(options.slowStore ? { start: startWithLaterReleaseStore } : {}) });
  if (options.releaseKey !== false) await registerKey(reg.url, reg.admin, releaseKey, 'release');
  return { ...reg, packKey, releaseKey, work: tempDir('iqp-release-packs-') };
}

/** A request to the registry with the publisher token (release managers need no more). */
export function api(reg: TestRegistry, method: string, path: string, json?: unknown, token: string | null = reg.publisher): Promise<Reply> {
  return call(reg.url, path, { method, ...(token ? { token } : {}), ...(json !== undefined ? { json } : {}) });
}

function ok<T>(r: Reply, what: string, status = 200): T {
  expect(r.status, `${what}: ${r.body.toString('utf8').slice(0, 400)}`).toBe(status);
  return r.json<T>();
}

/** Builds id@version from the translation template (min_app_version 1.0.0 unless given) into `dir`. */
export function buildReleasePack(dir: string, key: TestKey, package_id: string, version: string, min_app_version = '1.0.0'): Promise<BuiltPack> {
  return buildTemplatePack(dir, key, { authored: { package_id, version, min_app_version } });
}

/** Uploads a pack built with the registry's pack key; expects it stored. */
export async function uploadPack(reg: ReleaseRegistry, pack: BuiltPack): Promise<BuiltPack> {
  ok(await upload(reg.url, reg.publisher, pack.path), `upload ${pack.package_id}@${pack.version}`, 201);
  return pack;
}

/** Builds id@version from the translation template (min_app_version 1.0.0 unless given) and uploads it. */
export async function publishPack(reg: ReleaseRegistry, package_id: string, version: string, min_app_version = '1.0.0'): Promise<BuiltPack> {
  return uploadPack(reg, await buildReleasePack(reg.work, reg.packKey, package_id, version, min_app_version));
}

export interface ReleaseJson {
  id: number;
  name: string;
  channel: string;
  status: string;
  sequence: number | null;
  expires_at: string | null;
  artifacts: { role: string; package_id: string; version: string }[];
  [k: string]: unknown;
}

export async function createRelease(reg: TestRegistry, body: { name: string; channel?: string; min_app_version?: string; roles?: string[]; profile?: string; notes?: string }): Promise<ReleaseJson> {
  return ok(await api(reg, 'POST', '/v1/admin/releases', { channel: 'stable', min_app_version: '1.0.0', ...body }), `create ${body.name}`, 201);
}

/** Attaches id@version in `role`; `extraRole` for a role the release does not require. */
export async function attach(reg: TestRegistry, id: number, role: string, package_id: string, version: string, extraRole = false): Promise<ReleaseJson> {
  const r = await api(reg, 'POST', `/v1/admin/releases/${id}/artifacts`, { role, package_id, version, ...(extraRole ? { extra_role: true } : {}) });
  expect([200, 201], r.body.toString('utf8')).toContain(r.status);
  return r.json();
}

/** A draft with the given `role: pack` artifacts (each role required), ready to publish. */
export async function draftWith(reg: TestRegistry, name: string, artifacts: Record<string, BuiltPack>, extra: { channel?: string; min_app_version?: string } = {}): Promise<ReleaseJson> {
  const release = await createRelease(reg, { name, roles: Object.keys(artifacts), ...extra });
  for (const [role, pack] of Object.entries(artifacts)) await attach(reg, release.id, role, pack.package_id, pack.version);
  return release;
}

export interface SignOptions {
  readonly key?: TestKey;
  /** Default: the channel's next sequence as the registry says. */
  readonly sequence?: number;
  readonly expiresAt?: Date;
  /** Changes the registry's body before signing (a manifest describing something else). */
  readonly body?: (b: ReleaseManifestBody) => ReleaseManifestBody;
}

export interface Signed {
  manifest_json: string;
  signature: string;
}

/** What `iqp release publish` does on the client: fetch the body, add sequence and times, sign. */
export async function signRelease(reg: ReleaseRegistry, id: number, options: SignOptions = {}): Promise<Signed & { manifest: ReleaseManifest }> {
  const { body, next_sequence } = ok<{ body: ReleaseManifestBody; next_sequence: number }>(await api(reg, 'GET', `/v1/admin/releases/${id}/manifest-body`), 'manifest-body');
  const now = Date.now();
  const manifest: ReleaseManifest = {
    ...(options.body ? options.body(body) : body),
    sequence: options.sequence ?? next_sequence,
    signed_at: rfc3339(new Date(now)),
    expires_at: rfc3339(options.expiresAt ?? new Date(now + 30 * 86_400_000)),
  };
  const { manifestJson, signature } = signReleaseManifest(manifest, (options.key ?? reg.releaseKey).secret);
  return { manifest_json: manifestJson, signature, manifest };
}

export function postSigned(reg: TestRegistry, id: number, signed: Signed, mode: 'publish' | 'resign' = 'publish'): Promise<Reply> {
  return api(reg, 'POST', `/v1/admin/releases/${id}/${mode}`, { manifest_json: signed.manifest_json, signature: signed.signature });
}

/** Signs with the release key and publishes (or re-signs); expects success. */
export async function publishRelease(reg: ReleaseRegistry, id: number, mode: 'publish' | 'resign' = 'publish', options: SignOptions = {}): Promise<ReleaseJson> {
  return ok(await postSigned(reg, id, await signRelease(reg, id, options), mode), `${mode} ${id}`);
}

export async function deprecateRelease(reg: TestRegistry, id: number, message = 'withdrawn in a test'): Promise<ReleaseJson> {
  return ok(await api(reg, 'POST', `/v1/admin/releases/${id}/deprecate`, { message }), `deprecate ${id}`);
}

/** Everything a release change could touch, read straight from registry.sqlite. */
export function releaseState(reg: TestRegistry): Record<string, unknown> {
  return withDatabase(reg.dataDir, (db) => ({
    releases: db.prepare('SELECT * FROM dataset_releases ORDER BY id').all(),
    artifacts: db.prepare('SELECT * FROM dataset_release_artifacts ORDER BY release_id, role, package_id').all(),
    sequences: db.prepare('SELECT * FROM channel_sequences ORDER BY channel').all(),
    profiles: db.prepare('SELECT * FROM release_profiles ORDER BY name').all(),
    packs: db.prepare('SELECT package_id, version, deprecated_at FROM packs ORDER BY package_id, version').all(),
    audit: db.prepare('SELECT count(*) FROM audit_log').pluck().get(),
  }));
}

/** Runs `request` and asserts it changed nothing a release change could touch; returns its reply. */
export async function unchanged(reg: TestRegistry, request: () => Promise<Reply>): Promise<Reply> {
  const before = releaseState(reg);
  const reply = await request();
  expect(releaseState(reg), `${reply.status} ${reply.body.toString('utf8').slice(0, 300)}`).toEqual(before);
  return reply;
}

/** Audit actions recorded for release `id`, oldest first. */
export function releaseAudit(reg: TestRegistry, id: number): { action: string; details: any }[] {
  return withDatabase(reg.dataDir, (db) =>
    (db.prepare('SELECT action, details FROM audit_log WHERE target = ? ORDER BY id').all(`release:${id}`) as { action: string; details: string | null }[]).map((e) => ({
      action: e.action,
      details: e.details === null ? null : JSON.parse(e.details),
    })),
  );
}

export function channelSequence(reg: TestRegistry, channel: string): number {
  return withDatabase(reg.dataDir, (db) => (db.prepare('SELECT sequence FROM channel_sequences WHERE channel = ?').pluck().get(channel) as number | undefined) ?? 0);
}
