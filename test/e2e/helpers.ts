/** Helpers for end-to-end tests: the real bin/iqp.js in temp directories, nothing mocked. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
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
