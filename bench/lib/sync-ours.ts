/**
 * Our side: a registry as an operator sets one up for app sync, all through the CLI of the build
 * under test — `iqp plugins enable auth`, `iqp plugins enable sync`, their config with
 * `iqp plugins config … --set`, `iqp users create` (IQP_USER_PASSWORD) — then
 * `node bin/iqp.js server start --data DIR --port 0 --json` as a child process on 127.0.0.1.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv, stopChild } from './proc.js';
import type { SyncServer } from './sync-client.js';

export const BENCH_EMAIL = 'sync-bench@example.org';
export const BENCH_PASSWORD = 'bench-passphrase-long-enough';

/** Rate limits out of the way: the benchmark signs in a handful of devices from one address. */
const ROOMY_AUTH = { per_ip: { points: 10_000_000, duration_s: 60 }, per_email_ip: { points: 10_000_000, duration_s: 60 }, mail_per_email: { points: 10, duration_s: 60 } };

export interface OursSetup {
  /** Every CLI command run, for the report (no secrets: the password goes by environment). */
  readonly commands: readonly string[];
}

/**
 * Creates `dataDir` and sets it up with the CLI at `cliRoot`. `syncPlugin` is what
 * `iqp plugins enable` takes: `sync` (the built-in one) or a plugin directory whose id is sync.
 * `syncConfig` are `key=value` pairs
 * for `iqp plugins config sync --set` (the entities the benchmark writes, raised limits). `env`:
 * the registry's other settings (IQP_DATABASE_URL…), given to every command as to the server.
 */
export function setupOurs(cliRoot: string, dataDir: string, syncPlugin: string, syncConfig: readonly string[], env: Readonly<Record<string, string>> = {}): OursSetup {
  mkdirSync(dataDir, { recursive: true });
  const commands: string[] = [];
  const iqp = (args: string[], extra: Record<string, string> = {}) => {
    commands.push(`iqp ${args.join(' ')}`);
    execFileSync(process.execPath, [join(cliRoot, 'bin', 'iqp.js'), ...args, '--data', dataDir, '--json'], {
      cwd: dataDir,
      env: childEnv({ HOME: dataDir, ...env, ...extra }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  };
  iqp(['server', 'migrate']);
  iqp(['plugins', 'enable', 'auth']);
  iqp(['plugins', 'config', 'auth', '--set', 'access_ttl_s=86400', '--set', `rate_limits=${JSON.stringify(ROOMY_AUTH)}`]);
  iqp(['plugins', 'enable', syncPlugin]);
  if (syncConfig.length > 0) iqp(['plugins', 'config', 'sync', ...syncConfig.flatMap((kv) => ['--set', kv])]);
  iqp(['users', 'create', BENCH_EMAIL], { IQP_USER_PASSWORD: BENCH_PASSWORD });
  return { commands };
}


/**
 * `node [nodeArgs] bin/iqp.js server start --data DIR --port 0 --json` with `workers` worker
 * processes; resolves once it printed its JSON (url, pid, workers, plugins loaded). Fails if a
 * plugin in `needPlugins` did not load.
 */
export async function startOurs(cliRoot: string, dataDir: string, nodeArgs: readonly string[], needPlugins: readonly string[], workers: number, env: Readonly<Record<string, string>> = {}): Promise<SyncServer> {
  const argv = [...nodeArgs, join(cliRoot, 'bin', 'iqp.js'), 'server', 'start', '--data', dataDir, '--host', '127.0.0.1', '--port', '0', '--json'];
  // By environment, not flag: a build from before --workers served from one process and knows neither.
  const child = spawn(process.execPath, argv, { cwd: dataDir, env: childEnv({ HOME: dataDir, ...env, IQP_WORKERS: String(workers) }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`iqp server start did not start in 60 s\n${stdout}\n${stderr}`));
    }, 60_000);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      try {
        const parsed = JSON.parse(stdout) as Record<string, unknown>;
        clearTimeout(timer);
        resolve(parsed);
      } catch {
        // not a whole document yet
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`iqp server start exited (${code ?? signal}) before it was ready\n${stdout}\n${stderr}`));
    });
  });
  child.stdout!.resume();
  const plugins = info['plugins'] as { loaded: Array<{ id: string; version: string }>; failed: Array<{ id: string; error?: unknown }> } | undefined;
  const loaded = new Set((plugins?.loaded ?? []).map((p) => p.id));
  const missing = needPlugins.filter((id) => !loaded.has(id));
  if (missing.length > 0) {
    await stopChild(child, 30_000);
    throw new Error(`iqp server started without ${missing.join(', ')}: ${JSON.stringify(plugins)}\n${stderr}`);
  }
  const pid = Number(info['pid']);
  const workerPids = Array.isArray(info['workers']) ? (info['workers'] as number[]) : [];
  return { url: String(info['url']), pid, pids: [pid, ...workerPids], stderr: () => stderr, stop: () => stopChild(child, 30_000) };
}

/** `iqp --version` of the build under test, and the plugins' versions from its start-up answer. */
export function oursVersion(cliRoot: string): string {
  try {
    return execFileSync(process.execPath, [join(cliRoot, 'bin', 'iqp.js'), '--version'], { encoding: 'utf8', env: childEnv({ HOME: '/tmp' }) }).trim();
  } catch {
    return 'unknown';
  }
}
