/**
 * Helpers for the registry's server-side tests: real data directories, real signed packs built with
 * the format library, a real server on 127.0.0.1 with a random port (in-process via startServer, or
 * the real `bin/iqp.js server start` as a child), and what a data directory holds; HTTP helpers are
 * in http-client.ts (re-exported here). Nothing mocked.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { request } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { databasePath, type ServerConfig, serverConfig } from '../../server/config.js';
import { type RunningServer, startServer } from '../../server/start.js';
import { buildPack } from '../../src/pack/build.js';
import type { AuthoredManifest, Manifest } from '../../src/pack/format.js';
import { formatPublicKeyFile, generateKeyPair, parseSecretKey, type SecretKey } from '../../src/pack/minisign.js';
import type { TemplateName } from '../../src/pack/requirements.js';
import { type PackSource, readSource } from '../../src/pack/source.js';
import { afterEach } from 'vitest';
import { baseEnv, BIN, iqp, ROOT, type RunResult, tempDir, TEMPLATES } from '../e2e/helpers.js';
import { call } from './http-client.js';

export { BIN, listTree, ROOT, tempDir } from '../e2e/helpers.js';
export * from './http-client.js';

export const FIXTURES = join(ROOT, 'fixtures');

// ---------------------------------------------------------------------------------------------
// Keys and packs

export interface TestKey {
  readonly secret: SecretKey;
  readonly keyId: string;
  /** The minisign .pub file text, as POST /v1/admin/keys takes it. */
  readonly publicKeyFile: string;
}

function testKey(secret: SecretKey): TestKey {
  return { secret, keyId: secret.keyId, publicKeyFile: formatPublicKeyFile(secret) };
}

export function newKey(): TestKey {
  return testKey(generateKeyPair());
}

/** One of the bad-pack corpus keys (fixtures/keys/<name>.key, unencrypted and public on purpose). */
export async function fixtureKey(name: 'corpus' | 'other'): Promise<TestKey> {
  return testKey(await parseSecretKey(readFileSync(join(FIXTURES, 'keys', `${name}.key`), 'utf8'), null));
}

export interface BuiltPack {
  readonly path: string;
  readonly package_id: string;
  readonly version: string;
  readonly size_bytes: number;
  readonly sha256: string;
  readonly manifest: Manifest;
}

const sources = new Map<TemplateName, Promise<PackSource>>();

export interface TemplatePackOptions {
  readonly template?: TemplateName;
  readonly created_at?: Date;
  readonly level?: number;
  readonly authored?: Partial<AuthoredManifest>;
}

/**
 * A signed pack built from templates/<template> with authored fields overridden (as a copied
 * iqp.json with another version or id would), written into `dir`.
 */
export async function buildTemplatePack(dir: string, key: TestKey, options: TemplatePackOptions = {}): Promise<BuiltPack> {
  const template = options.template ?? 'translation';
  if (!sources.has(template)) sources.set(template, readSource(join(TEMPLATES, template)));
  const source = await sources.get(template)!;
  const authored = { ...source.authored, ...options.authored };
  const out = join(dir, `${authored.package_id}-${authored.version}-${randomBytes(4).toString('hex')}.iqp`);
  const built = await buildPack({
    source: { ...source, authored },
    secretKey: key.secret,
    level: options.level ?? 3,
    outPath: out,
    createdAt: options.created_at ?? new Date('2025-01-01T00:00:00Z'),
  });
  return { path: built.path, package_id: authored.package_id, version: authored.version, size_bytes: built.size_bytes, sha256: built.sha256, manifest: built.manifest };
}

/**
 * A signed pack of a custom type whose content.sqlite holds `mib` MiB of random (incompressible)
 * bytes, so the .iqp is about that size: for interrupted downloads and uploads.
 */
export async function buildRandomPack(dir: string, key: TestKey, options: { mib: number; package_id: string; version: string }): Promise<BuiltPack> {
  const content = join(dir, `content-${randomBytes(6).toString('hex')}.sqlite`);
  const db = new Database(content);
  try {
    db.pragma('journal_mode = DELETE');
    db.exec('CREATE TABLE chunks (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO chunks (id, data) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 0; i < options.mib * 16; i += 1) insert.run(i, randomBytes(64 * 1024));
    })();
  } finally {
    db.close();
  }
  const authored: AuthoredManifest = {
    package_id: options.package_id,
    package_type: 'blobs',
    version: options.version,
    language_code: 'en',
    name: `Random ${options.mib} MiB`,
    description: 'Random bytes for interrupted transfers.',
    min_app_version: '1.0.0',
  };
  const built = await buildPack({
    source: { authored, contentFile: content },
    secretKey: key.secret,
    level: 1,
    outPath: join(dir, `${options.package_id}-${options.version}.iqp`),
    createdAt: new Date('2025-01-01T00:00:00Z'),
  });
  return { path: built.path, package_id: authored.package_id, version: authored.version, size_bytes: built.size_bytes, sha256: built.sha256, manifest: built.manifest };
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// An in-process registry

export interface TestRegistry {
  readonly url: string;
  readonly dataDir: string;
  readonly running: RunningServer;
  readonly admin: string;
  readonly publisher: string;
  /** Lines the server logged (errors are logged with level "error"). */
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** startServer (or `start`) on 127.0.0.1:0 over a fresh data dir, with an admin and a publisher token, and `keys` registered. */
export async function startRegistry(
  options: { keys?: readonly TestKey[]; config?: Partial<ServerConfig>; start?: typeof startServer } = {},
): Promise<TestRegistry> {
  const dataDir = tempDir('iqp-server-data-');
  const logs: Record<string, unknown>[] = [];
  // Every answer is checked against its route's declared schema: a test through here also proves the contract.
  const running = await (options.start ?? startServer)(serverConfig({ dataDir, host: '127.0.0.1', port: 0, ...options.config }), (line) => logs.push(line), { validateResponses: true });
  const tokens = running.registry.services.tokens;
  const admin = (await tokens.create('admin', 'test-admin', 'test')).token;
  const publisher = (await tokens.create('publisher', 'test-publisher', 'test')).token;
  for (const key of options.keys ?? []) await registerKey(running.url, admin, key);
  return { url: running.url, dataDir, running, admin, publisher, logs, close: () => running.close() };
}

/** Runs `fn` against a fresh registry (see startRegistry), closing it afterwards. */
export async function withRegistry<T>(options: Parameters<typeof startRegistry>[0], fn: (reg: TestRegistry) => Promise<T>): Promise<T> {
  const reg = await startRegistry(options);
  try {
    return await fn(reg);
  } finally {
    await reg.close();
  }
}

export async function registerKey(base: string, admin: string, key: TestKey, purpose: 'pack' | 'release' = 'pack'): Promise<void> {
  const r = await call(base, '/v1/admin/keys', { method: 'POST', token: admin, json: { public_key: key.publicKeyFile, name: `test ${key.keyId}`, purpose } });
  if (r.status !== 201 && r.status !== 200) throw new Error(`registering key ${key.keyId}: ${r.status} ${r.body.toString('utf8')}`);
}

// ---------------------------------------------------------------------------------------------
// The real server as a child process

export interface ChildServer {
  readonly child: ChildProcessWithoutNullStreams;
  readonly pid: number;
  readonly url: string;
  /** The JSON document `server start --json` printed. */
  readonly info: { url: string; pid: number; workers: number[]; swept_temp_files: number; swept_orphan_blobs: number; migrated: number[] };
  stderr(): string;
  /** Resolves with the exit code or signal once the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node bin/iqp.js server start --data DIR --port 0 --json`, resolved once it printed its URL. */
export function spawnServer(dataDir: string, extraArgs: readonly string[] = [], env: Record<string, string> = {}): Promise<ChildServer> {
  const child = spawn(process.execPath, [BIN, 'server', 'start', '--data', dataDir, '--port', '0', '--json', ...extraArgs], {
    cwd: dataDir,
    env: baseEnv({ HOME: dataDir, XDG_CONFIG_HOME: undefined, ...env }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in 20 s\n${stdout}\n${stderr}`));
    }, 20_000);
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      let info: ChildServer['info'];
      try {
        info = JSON.parse(stdout);
      } catch {
        return; // not the whole document yet
      }
      clearTimeout(timer);
      // A start that failed prints its error document instead (and exits): that is the failure.
      if (typeof info?.url !== 'string') {
        child.kill('SIGKILL');
        reject(new Error(`server start printed no URL\n${stdout}\n${stderr}`));
        return;
      }
      resolve({ child, pid: child.pid!, url: info.url, info, stderr: () => stderr, exited });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before it printed its URL\n${stdout}\n${stderr}`));
    });
  });
}

/**
 * For test files that run one `iqp server start` child per test: `servers.start(dataDir)` spawns
 * it, and it is stopped (SIGTERM, then awaited) after each test, whether the test passed or not.
 */
export function childServerPerTest(): { start(dataDir: string, extraArgs?: readonly string[], env?: Record<string, string>): Promise<ChildServer> } {
  let current: ChildServer | null = null;
  afterEach(async () => {
    const server = current;
    current = null;
    if (server) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
  return {
    async start(dataDir, extraArgs = [], env = {}) {
      current = await spawnServer(dataDir, extraArgs, env);
      return current;
    },
  };
}

/** `iqp ARGS --data DIR` run in DIR with HOME there too, as an operator on the registry's machine. */
export function iqpOnData(dataDir: string, args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return iqp([...args, '--data', dataDir], { cwd: dataDir, env: { HOME: dataDir, ...env } });
}

/**
 * A new data directory holding an empty registry, as `iqp server migrate` makes it before the first
 * start: the commands that administer a registry (token, plugins, users, sync) refuse one without.
 */
export async function newRegistryDir(prefix = 'iqp-registry-'): Promise<string> {
  const dataDir = tempDir(prefix);
  const r = await iqpOnData(dataDir, ['server', 'migrate']);
  if (r.code !== 0) throw new Error(`server migrate failed (${r.code}): ${r.stdout}${r.stderr}`);
  return dataDir;
}

/** `iqp token create --role ROLE --data DIR --json`, as an operator makes the first tokens; returns the token. */
export async function createTokenCli(dataDir: string, role: 'admin' | 'publisher'): Promise<string> {
  const r = await iqp(['token', 'create', '--role', role, '--name', `crash-${role}`, '--data', dataDir, '--json'], { cwd: dataDir, env: { HOME: dataDir } });
  if (r.code !== 0) throw new Error(`token create failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r.json<{ token: string }>().token;
}

// ---------------------------------------------------------------------------------------------
// What a data directory holds

/** sha256 names of the committed blobs. */
export function blobFiles(dataDir: string): string[] {
  const root = join(dataDir, 'blobs', 'sha256');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .flatMap((prefix) => readdirSync(join(root, prefix)).map((name) => ({ name, path: join(root, prefix, name) })))
    .filter((f) => statSync(f.path).isFile())
    .map((f) => f.name)
    .sort();
}

export function tmpFiles(dataDir: string): string[] {
  const tmp = join(dataDir, 'tmp');
  return existsSync(tmp) ? readdirSync(tmp).sort() : [];
}

/** Opens registry.sqlite read-only (beside a running server: WAL allows it) for `fn`. */
export function withDatabase<T>(dataDir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(databasePath(dataDir), { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export function packRows(dataDir: string): { package_id: string; version: string; sha256: string; size_bytes: number }[] {
  return withDatabase(dataDir, (db) => db.prepare('SELECT package_id, version, sha256, size_bytes FROM packs ORDER BY package_id, version').all() as never);
}

export function integrityCheck(dataDir: string): string[] {
  return withDatabase(dataDir, (db) => db.prepare('PRAGMA integrity_check').pluck().all() as string[]);
}

/** Open file descriptors of a process (Linux). */
export function openFds(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * A request over a connection of its own, closed after the answer: with `--workers N`, each goes
 * to the next worker in turn (the cluster module hands connections out round-robin).
 */
export function fresh(url: string, path: string, options: { method?: string; token?: string; json?: unknown; timeoutMs?: number } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = options.json === undefined ? undefined : JSON.stringify(options.json);
    const req = request(
      `${url}${path}`,
      {
        agent: false,
        method: options.method ?? 'GET',
        headers: {
          connection: 'close',
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      },
    );
    req.on('error', reject);
    // A connection handed to a worker that never answers must fail the test, not hang it.
    const timeoutMs = options.timeoutMs ?? 5000;
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer to ${path} in ${timeoutMs} ms`)));
    req.end(body);
  });
}

/** Polls `fn` until it returns true or `ms` pass. */
export async function until(fn: () => boolean | Promise<boolean>, ms = 5000, step = 25): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, step));
  }
}
