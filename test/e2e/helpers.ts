/** Helpers for end-to-end tests: the real bin/iqp.js in temp directories, nothing mocked. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'iqp.js');
export const TEMPLATES = join(ROOT, 'templates');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws if it is not exactly one JSON document). */
  json<T = any>(): T;
}

export interface RunOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
}

/** A clean environment: no inherited IQP_* settings, CI set so nothing prompts. */
export function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('IQP_') && k !== 'SOURCE_DATE_EPOCH') env[k] = v;
  env['CI'] = 'true';
  env['NO_COLOR'] = '1';
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

function result(code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string): RunResult {
  return {
    code,
    signal,
    stdout,
    stderr,
    json() {
      try {
        return JSON.parse(stdout);
      } catch (err) {
        throw new Error(`stdout is not one JSON document: ${(err as Error).message}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
      }
    },
  };
}

export function iqp(args: readonly string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: baseEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise(result(code, signal, stdout, stderr));
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Runs a standard tool (tar, zstd, sha256sum, sqlite3, minisign) synchronously. */
export function sh(cmd: string, args: readonly string[], cwd: string, input?: string): RunResult {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', input: input ?? '', env: baseEnv() });
  if (r.error) throw r.error;
  return result(r.status, r.signal, r.stdout, r.stderr);
}

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'iqp-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Every file under dir (relative paths, sorted), hidden files included. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk('');
  return out.sort();
}

export const EPOCH = '1767225600'; // 2026-01-01T00:00:00Z

export interface RegistryProcess {
  /** Base URL, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly child: ChildProcess;
  /** What the server wrote on stderr so far. */
  stderr(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * The real `iqp server start --port 0 --json` on 127.0.0.1 with its own data dir (or on `port`, to
 * restart a registry at the same URL); resolves with the URL from the first JSON document it prints.
 */
export function startRegistry(options: { cwd: string; data: string; env?: Record<string, string | undefined>; timeoutMs?: number; port?: number }): Promise<RegistryProcess> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, 'server', 'start', '--data', options.data, '--host', '127.0.0.1', '--port', String(options.port ?? 0), '--json'], {
      cwd: options.cwd,
      env: baseEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.on('close', (code, signal) => {
        running.delete(child);
        r({ code, signal });
      }),
    );
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`iqp server start did not print its URL in time\n--- stderr\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      let doc: { url?: string };
      try {
        doc = JSON.parse(stdout) as { url?: string };
      } catch {
        return; // not the whole document yet
      }
      clearTimeout(timer);
      if (typeof doc.url !== 'string') return reject(new Error(`no url in ${stdout}`));
      resolvePromise({
        url: doc.url,
        child,
        stderr: () => stderr,
        stop: () => {
          child.kill('SIGTERM');
          return exited;
        },
      });
    });
    child.on('error', reject);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`iqp server start exited (${code}) before printing its URL\n--- stderr\n${stderr}`));
    });
  });
}

/** A local port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
