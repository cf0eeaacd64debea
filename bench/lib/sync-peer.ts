/**
 * The peer: pouchdb-server 4 (express-pouchdb over PouchDB's LevelDB adapter, leveldown), installed
 * once by npm into a cache folder of its own (it is not a dependency of iqp) and started on
 * 127.0.0.1 with a free port and an on-disk database folder, as a child process whose peak RSS can
 * be read. Request logging goes only to its log file at level "warning" (iqp logs no requests by
 * default either).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { stopChild } from './proc.js';
import { freePort } from '../registry/servers.js';
import type { SyncServer } from './sync-client.js';

export const PEER_SPEC = 'pouchdb-server@4';

export function defaultPeerDir(): string {
  const cache = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(cache, 'iqp-bench', 'pouchdb-server-4');
}

export interface PeerInstall {
  readonly dir: string;
  readonly bin: string;
  readonly version: string;
  readonly leveldown: string;
  readonly installedNow: boolean;
}

function packageVersion(dir: string, name: string): string {
  try {
    return (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** `npm install --prefix <dir> pouchdb-server@4` unless it is there already. */
export function installPeer(dir: string, log: (m: string) => void): PeerInstall {
  const bin = join(dir, 'node_modules', 'pouchdb-server', 'bin', 'pouchdb-server');
  let installedNow = false;
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    log(`installing ${PEER_SPEC} into ${dir} (once; a minute or two)…`);
    execFileSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel', 'error', PEER_SPEC], { stdio: ['ignore', 'ignore', 'pipe'] });
    installedNow = true;
  }
  if (!existsSync(bin)) throw new Error(`${PEER_SPEC} did not install into ${dir}`);
  return { dir, bin, version: packageVersion(dir, 'pouchdb-server'), leveldown: packageVersion(dir, 'leveldown'), installedNow };
}


/** The flags the peer runs with, for the report. */
export function peerFlags(port: number | string, dir: string): string[] {
  return ['--host', '127.0.0.1', '--port', String(port), '--dir', join(dir, 'db'), '--config', join(dir, 'config.json'), '--no-stdout-logs'];
}

/** Starts pouchdb-server on a fresh folder `dir` and creates the database `db`. */
export async function startPeer(install: PeerInstall, dir: string, db: string): Promise<SyncServer> {
  mkdirSync(join(dir, 'db'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify({ log: { level: 'warning', file: join(dir, 'log.txt') } }, null, 2)}\n`);
  const port = await freePort();
  const child = spawn(process.execPath, [install.bin, ...peerFlags(port, dir)], { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pouchdb-server exited (${child.exitCode}): ${stderr}`);
    try {
      const r = await fetch(`${url}/`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`pouchdb-server did not answer on ${url} in 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const created = await fetch(`${url}/${db}`, { method: 'PUT' });
  if (created.status !== 201) throw new Error(`PUT /${db}: ${created.status} ${await created.text()}`);
  return { url, pid: child.pid!, pids: [child.pid!], stderr: () => stderr, stop: () => stopChild(child) };
}

/** The peer's own report of what it runs on (GET /). */
export async function peerBanner(url: string): Promise<string> {
  const r = (await (await fetch(`${url}/`)).json()) as { version?: string; 'pouchdb-adapters'?: string[] };
  return `pouchdb-server ${r.version ?? '?'} (adapters: ${(r['pouchdb-adapters'] ?? []).join(', ')})`;
}

export function npmVersion(): string {
  try {
    return execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
