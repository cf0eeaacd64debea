/**
 * What the storage benchmark runs registries on besides a data directory: a throwaway PostgreSQL
 * cluster (scripts/pg-test-cluster.sh, durability off, on a free loopback port) with a fresh
 * database per registry, and s3rver (scripts/s3rver.ts, a child process) with a fresh bucket per
 * registry; and the settings that put a registry on each storage configuration, given through the
 * environment as an operator would give them.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { S3RVER_CREDENTIALS, type S3rver } from '../../scripts/s3rver.js';

const run = promisify(execFile);

export interface PgCluster {
  /** postgres:// URL of the cluster's `postgres` database. */
  readonly url: string;
  /** `SELECT version()`, shortened. */
  readonly version: string;
  /** A new, empty database; its URL. */
  newDatabase(): Promise<string>;
  /**
   * CPU seconds (user + system) the cluster's processes have used so far: the postmaster with the
   * backends it has reaped, and those alive; null if it cannot be read.
   */
  cpuSeconds(): number | null;
  /** Stops the cluster and removes its directory; synchronous, so that it can run on the way out. */
  stop(): void;
}

async function sql(url: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, application_name: 'iqp-bench' });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

/** Starts a throwaway cluster in a new temp directory; the caller must stop() it, on every path out. */
export async function startPgCluster(root: string): Promise<PgCluster> {
  const script = join(root, 'scripts', 'pg-test-cluster.sh');
  // Under the system's temp directory: as root the cluster runs as the postgres user, which must be
  // able to reach it. Neither it nor its databases (whose names the backends' command lines show)
  // are named "bench": quiet.ts takes such processes outside this run for others' work.
  const dir = await mkdtemp(join(tmpdir(), 'iqp-storage-pg-'));
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    execFileSync('bash', [script, 'stop', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  };
  try {
    const url = (await run('bash', [script, 'start', dir])).stdout.trim();
    const version = String((await sql(url, 'SELECT version() AS v')).rows[0]?.v ?? 'unknown').split(' on ')[0]!;
    let n = 0;
    return {
      url,
      version,
      async newDatabase() {
        const name = `iqp_storage_${process.pid}_${n++}`;
        await sql(url, `CREATE DATABASE ${name}`);
        const u = new URL(url);
        u.pathname = `/${name}`;
        return u.href;
      },
      cpuSeconds: () => clusterCpu(dir),
      stop,
    };
  } catch (err) {
    stop();
    throw err;
  }
}

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: 100 on Linux). */
const HZ = 100;

function statTimes(pid: number): { self: number; children: number; ppid: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // stat(5): ppid is field 4, utime/stime 14/15, cutime/cstime 16/17 (f[0] is field 3).
    return { ppid: Number(f[1]), self: (Number(f[11]) + Number(f[12])) / HZ, children: (Number(f[13]) + Number(f[14])) / HZ };
  } catch {
    return null;
  }
}

function clusterCpu(dir: string): number | null {
  let postmaster: number;
  try {
    postmaster = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return null;
  }
  const main = statTimes(postmaster);
  if (!main) return null;
  let total = main.self + main.children;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const t = statTimes(Number(name));
    if (t && t.ppid === postmaster) total += t.self;
  }
  return total;
}

export function s3rverVersion(root: string): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', 's3rver', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Where a registry under test keeps its metadata and its pack bytes, and how it serves downloads. */
export type StorageKind = 'sqlite-fs' | 'pg-fs' | 'pg-s3-proxy' | 'pg-s3-redirect';

export const STORAGE_LABELS: Record<StorageKind, string> = {
  'sqlite-fs': 'SQLite + fs',
  'pg-fs': 'PostgreSQL + fs',
  'pg-s3-proxy': 'PostgreSQL + S3, proxy',
  'pg-s3-redirect': 'PostgreSQL + S3, redirect',
};

export interface Backends {
  readonly pg: PgCluster;
  readonly s3: S3rver;
}

/** A registry's place in the backends: its database URL (PostgreSQL kinds) and bucket (S3 kinds). */
export interface Placement {
  readonly databaseUrl?: string;
  readonly bucket?: string;
}

/** A fresh database and bucket as `kind` needs them. */
export async function freshPlacement(b: Backends, kind: StorageKind): Promise<Placement> {
  return {
    ...(kind === 'sqlite-fs' ? {} : { databaseUrl: await b.pg.newDatabase() }),
    ...(kind === 'pg-s3-proxy' || kind === 'pg-s3-redirect' ? { bucket: await b.s3.newBucket() } : {}),
  };
}

/**
 * The registry's settings for `kind` on `place`, as environment variables (`iqp server start`,
 * `iqp token create` and the plugins' commands all read them); s3rver's credentials go by the AWS
 * SDK's own variables.
 */
export function storageEnv(b: Backends, kind: StorageKind, place: Placement): Record<string, string> {
  if (kind === 'sqlite-fs') return {};
  if (!place.databaseUrl) throw new Error(`${kind} needs a database`);
  const env: Record<string, string> = { IQP_DATABASE_URL: place.databaseUrl };
  if (kind === 'pg-fs') return env;
  if (!place.bucket) throw new Error(`${kind} needs a bucket`);
  return {
    ...env,
    ...S3RVER_CREDENTIALS,
    IQP_BLOB_STORE: 's3',
    IQP_S3_ENDPOINT: b.s3.endpoint,
    IQP_S3_BUCKET: place.bucket,
    IQP_S3_FORCE_PATH_STYLE: 'true',
    IQP_S3_CHECKSUMS: 'when_required',
    IQP_DOWNLOAD_MODE: kind === 'pg-s3-redirect' ? 'redirect' : 'proxy',
  };
}
