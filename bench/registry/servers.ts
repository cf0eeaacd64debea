/**
 * The two servers under comparison, as child processes: the registry as operators run it
 * (`node bin/iqp.js server start --data DIR --port 0 --workers N`), and nginx as an unprivileged
 * foreground process with a generated configuration.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { childEnv, stopChild } from '../lib/proc.js';

export interface Child {
  readonly url: string;
  /** The process that serves (for a cluster, the primary). */
  readonly pid: number;
  /** Every process that serves requests (the workers of a cluster, or [pid]). */
  readonly servingPids: () => number[];
  stderr(): string;
  stop(): Promise<void>;
}

/** Spawns `argv` and resolves once its stdout held one whole JSON document. */
function spawnJson(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; info: Record<string, unknown>; stderr: () => string }> {
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')} did not start in 30 s\n${stdout}\n${stderr}`));
    }, 30_000);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      let info: Record<string, unknown>;
      try {
        info = JSON.parse(stdout) as Record<string, unknown>;
      } catch {
        return;
      }
      clearTimeout(timer);
      resolve({ child, info, stderr: () => stderr });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(' ')} exited (${code ?? signal}) before it was ready\n${stdout}\n${stderr}`));
    });
  });
}

/**
 * `node bin/iqp.js server start --data DIR --port 0 --workers N --json` from the frozen build. A
 * build from before `--workers` existed gets no such flag for N = 1 (it served from one process).
 * `env`: more settings (IQP_DATABASE_URL, IQP_BLOB_STORE…), as an operator's environment gives them.
 */
export async function startIqp(cliRoot: string, dataDir: string, workers: number, env: Readonly<Record<string, string>> = {}): Promise<Child> {
  const argv = [process.execPath, join(cliRoot, 'bin', 'iqp.js'), 'server', 'start', '--data', dataDir, '--port', '0', '--json'];
  const { child, info, stderr } = await spawnJson(argv, dataDir, childEnv({ HOME: dataDir, ...env, IQP_WORKERS: String(workers) }));
  child.stdout!.resume();
  const pid = Number(info['pid']);
  const pids = Array.isArray(info['workers']) && info['workers'].length > 0 ? (info['workers'] as number[]).slice() : [pid];
  return { url: String(info['url']), pid, servingPids: () => pids, stderr, stop: () => stopChild(child) };
}

/** A bare node:http floor (probe-floor.ts) serving `file` as cached JSON or by ranges, in `processes` processes. */
export async function startFloor(cliRoot: string, mode: 'json' | 'ranges', file: string, processes: number): Promise<Child> {
  const argv = [process.execPath, join(cliRoot, 'dist', 'bench', 'registry', 'probe-floor.js'), mode, file, String(processes)];
  const { child, info, stderr } = await spawnJson(argv, cliRoot, childEnv());
  child.stdout!.resume();
  const pids = (info['workers'] as number[]).slice();
  return { url: String(info['url']), pid: Number(info['pid']), servingPids: () => pids, stderr, stop: () => stopChild(child) };
}

/**
 * A copy of a data directory another server can own (each holds its directory's lock): the
 * database through SQLite's online backup, the blobs hard-linked (the very same files and page
 * cache, as nginx's are).
 */
export async function cloneDataDir(from: string, to: string): Promise<void> {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  const db = new Database(join(from, 'registry.sqlite'), { readonly: true });
  try {
    await db.backup(join(to, 'registry.sqlite'));
  } finally {
    db.close();
  }
  execFileSync('cp', ['-al', join(from, 'blobs'), join(to, 'blobs')]);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export const NGINX = '/usr/sbin/nginx';

export function nginxVersion(): string {
  // nginx -v prints to stderr.
  const r = spawnSync(NGINX, ['-v'], { encoding: 'utf8' });
  return r.error ? 'not found' : `${r.stdout}${r.stderr}`.trim() || 'unknown';
}

/** The files nginx serves: name in the document root → source (hard-linked: the very same file and page cache). */
export type StaticFiles = Readonly<Record<string, { readonly link?: string; readonly bytes?: Buffer }>>;

/**
 * nginx in the foreground (daemon off), unprivileged, on 127.0.0.1:<free port>, sendfile on,
 * no access log (the registry does not log requests by default either), keep-alive without a
 * request limit (Node has none), serving `files` from a document root in `dir`.
 */
export async function startNginx(dir: string, files: StaticFiles, workers: number | 'auto'): Promise<Child> {
  rmSync(dir, { recursive: true, force: true });
  const root = join(dir, 'root');
  mkdirSync(root, { recursive: true });
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, 'temp', t), { recursive: true });
  for (const [name, f] of Object.entries(files)) {
    if (f.link) {
      try {
        linkSync(f.link, join(root, name));
      } catch {
        symlinkSync(f.link, join(root, name));
      }
    } else writeFileSync(join(root, name), f.bytes!);
  }
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `# generated by bench/registry/servers.ts
worker_processes ${workers};
daemon off;
master_process on;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 65s;
  client_body_temp_path ${join(dir, 'temp', 'client_body')};
  proxy_temp_path ${join(dir, 'temp', 'proxy')};
  fastcgi_temp_path ${join(dir, 'temp', 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'temp', 'uwsgi')};
  scgi_temp_path ${join(dir, 'temp', 'scgi')};
  types { application/json json; application/vnd.iqp.pack+zstd iqp; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { }
  }
}
`,
  );
  const child = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr}${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''}`);
    try {
      await fetch(`${url}/`, { method: 'HEAD' });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`nginx did not answer on ${url}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const workerPids = () => {
    try {
      return execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  return {
    url,
    pid: child.pid!,
    servingPids: workerPids,
    stderr: () => stderr,
    // nginx stops fast on SIGTERM; SIGQUIT would wait for keep-alive connections.
    stop: () => stopChild(child),
  };
}

/** `iqp token create --role admin --data DIR --json`, as an operator makes the first token (`env` as for startIqp). */
export function createAdminToken(cliRoot: string, dataDir: string, env: Readonly<Record<string, string>> = {}): string {
  const out = execFileSync(process.execPath, [join(cliRoot, 'bin', 'iqp.js'), 'token', 'create', '--role', 'admin', '--name', 'bench', '--data', dataDir, '--json'], {
    cwd: dataDir,
    env: childEnv({ HOME: dataDir, ...env }),
    encoding: 'utf8',
  });
  return (JSON.parse(out) as { token: string }).token;
}

export async function registerKey(url: string, token: string, publicKeyFile: string, purpose: 'pack' | 'release' = 'pack'): Promise<void> {
  const r = await fetch(`${url}/v1/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ public_key: publicKeyFile, name: `registry bench (${purpose})`, purpose }),
  });
  if (r.status !== 201 && r.status !== 200) throw new Error(`registering the bench key: ${r.status} ${await r.text()}`);
}

/** KiB from /proc/<pid>/status (VmHWM: peak resident set; VmRSS: now), or null when the process is gone. */
export function procStatusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
