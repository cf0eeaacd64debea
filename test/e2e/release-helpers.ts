/**
 * A release world for end-to-end tests: the real `iqp server start` on 127.0.0.1 with a random
 * port over a temp data dir, keys made with `iqp keygen` (a publisher key, the release key apps
 * pin, and a "rogue" release key the registry accepts but apps do not pin), an admin token, and
 * packs initialised, built and published with the real binary.
 */
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { iqp, listTree, type RegistryProcess, type RunResult, startRegistry, tempDir } from './helpers.js';

export interface PackSpec {
  readonly id: string;
  readonly template: 'translation' | 'recitation' | 'dataset' | 'deck';
}

export interface ReleaseWorld {
  readonly work: string;
  readonly data: string;
  server: RegistryProcess;
  readonly token: string;
  /** `iqp …` in the work dir against the registry, with the admin token. */
  run(args: readonly string[], env?: Record<string, string | undefined>): Promise<RunResult>;
  /** `iqp … --json`, expecting exit 0; returns the document. */
  ok<T = any>(args: readonly string[]): Promise<T>;
  /** Stops the server and starts it again over the same data dir and port (the same URL). */
  restart(between?: () => void | Promise<void>): Promise<void>;
}

const isolated = (work: string) => ({ HOME: work, XDG_CONFIG_HOME: undefined, XDG_STATE_HOME: undefined });

export async function releaseWorld(prefix: string, packs: readonly PackSpec[]): Promise<ReleaseWorld> {
  const work = tempDir(prefix);
  const data = join(work, 'data');
  const local = async (args: string[]) => {
    const r = await iqp(args, { cwd: work, env: isolated(work) });
    expect(r.code, `iqp ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
    return r;
  };
  for (const name of ['publisher', 'release', 'rogue']) await local(['keygen', '--out', name, '--no-passphrase']);
  const server = await startRegistry({ cwd: work, data });
  const token = (await local(['token', 'create', '--role', 'admin', '--name', 'e2e release manager', '--data', data, '--json'])).json().token as string;
  const world = worldAt(work, server, token);
  await world.ok(['keys', 'add', 'publisher.pub', '--name', 'publisher']);
  await world.ok(['keys', 'add', 'release.pub', '--purpose', 'release', '--name', 'release manager']);
  await world.ok(['keys', 'add', 'rogue.pub', '--purpose', 'release', '--name', 'not pinned by apps']);
  for (const p of packs) {
    await local(['init', p.id, '--template', p.template, '--id', p.id, '-y']);
    await local(['build', p.id, '--key', 'publisher.key', '--out', `${p.id}-1.0.0.iqp`]);
  }
  if (packs.length > 0) await world.ok(['publish', ...packs.map((p) => `${p.id}-1.0.0.iqp`)]);
  return world;
}

/**
 * A world of its own made from a stopped one (its server stopped with `server.stop()`): a copy of
 * its work dir and data dir, so the same keys, token, packs and releases, served at another URL.
 * Setting a world up once and copying it per test keeps tests apart without paying the set-up each time.
 */
export async function copyWorld(stopped: ReleaseWorld, prefix: string): Promise<ReleaseWorld> {
  const work = tempDir(prefix);
  cpSync(stopped.work, work, { recursive: true });
  return worldAt(work, await startRegistry({ cwd: work, data: join(work, 'data') }), stopped.token);
}

function worldAt(work: string, server: RegistryProcess, token: string): ReleaseWorld {
  const data = join(work, 'data');
  const world: ReleaseWorld = {
    work,
    data,
    server,
    token,
    run: (args, env = {}) => iqp(args, { cwd: work, env: { ...isolated(work), IQP_REGISTRY: world.server.url, IQP_TOKEN: token, IQP_RETRY_BASE_MS: '1', ...env } }),
    async ok(args) {
      const r = await world.run([...args, '--json']);
      expect(r.code, `iqp ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
      return r.json();
    },
    async restart(between) {
      const port = Number(new URL(world.server.url).port);
      expect((await world.server.stop()).code).toBe(0);
      await between?.();
      world.server = await startRegistry({ cwd: work, data, port });
    },
  };
  return world;
}

/** Creates a release of `artifacts` (role → id@version) and publishes it with `key`; returns its id and sequence. */
export async function releaseOf(
  world: ReleaseWorld,
  name: string,
  artifacts: Record<string, string>,
  options: { key?: string; channel?: string; minAppVersion?: string; publish?: boolean } = {},
): Promise<{ id: number; sequence: number | null }> {
  const created = await world.ok(['release', 'create', name, '--channel', options.channel ?? 'stable', '--min-app-version', options.minAppVersion ?? '1.0.0', '--role', Object.keys(artifacts).join(',')]);
  for (const [role, ref] of Object.entries(artifacts)) await world.ok(['release', 'attach', String(created.id), role, ref]);
  if (options.publish === false) return { id: created.id, sequence: null };
  const published = await world.ok(['release', 'publish', String(created.id), '--key', options.key ?? 'release.key']);
  return { id: created.id, sequence: published.sequence };
}

/** `iqp pull --release latest` pinning release.pub, with its own trust state and out dir. */
export function pullRelease(world: ReleaseWorld, out: string, trust: string, extra: readonly string[] = []): Promise<RunResult> {
  return world.run(['pull', '--release', 'latest', '--release-key', 'release.pub', '--trust-state', trust, '--out', out, '--json', ...extra]);
}

/**
 * A refused release pull: the exit code and error code as the catalog says, the trust-state file
 * byte for byte as it was, and nothing new in the out dir (no .iqp, no .part).
 */
export async function expectRefusedPull(world: ReleaseWorld, out: string, trust: string, code: string, exit = 1): Promise<RunResult> {
  const trustPath = join(world.work, trust);
  const outPath = join(world.work, out);
  const trustBefore = existsSync(trustPath) ? readFileSync(trustPath) : null;
  const treeBefore = existsSync(outPath) ? listTree(outPath) : [];
  const r = await pullRelease(world, out, trust);
  expect(r.code, `${r.stdout}${r.stderr}`).toBe(exit);
  expect(r.json().error.code).toBe(code);
  expect(existsSync(trustPath) ? readFileSync(trustPath) : null, 'trust state unchanged').toEqual(trustBefore);
  expect(existsSync(outPath) ? listTree(outPath) : [], 'nothing new in --out').toEqual(treeBefore);
  return r;
}

/** The trust state's entry for `channel` of the one registry a test world has (the file's text). */
export function acceptedOn(trustFileText: string, channel: string): { sequence: number; release_id: number; manifest_sha256: string } {
  const registries = Object.values((JSON.parse(trustFileText) as { registries: Record<string, Record<string, any>> }).registries);
  expect(registries, 'one registry in the trust state').toHaveLength(1);
  return registries[0]![channel];
}
