/**
 * The load generators: curl for single-client transfers (downloads to /dev/null, streaming
 * uploads with -T) and wrk for concurrent requests, with a Lua script for random ranges.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface CurlResult {
  readonly status: number;
  readonly seconds: number;
  readonly bytes: number;
  readonly body: string;
}

function curl(args: readonly string[], onSpawn?: (pid: number) => void): Promise<CurlResult> {
  const fmt = '\n%{http_code} %{time_total} %{size_download} %{size_upload}';
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--no-buffer', '-w', fmt, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) onSpawn?.(child.pid);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-1_000_000)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`curl ${args.join(' ')} failed (${code}): ${err}`));
      const nl = out.lastIndexOf('\n');
      const [status, seconds, down, up] = out.slice(nl + 1).trim().split(' ').map(Number);
      resolve({ status: status!, seconds: seconds!, bytes: Math.max(down!, up!), body: out.slice(0, nl) });
    });
  });
}

/** GET `url` into /dev/null, one connection; the time is curl's time_total. */
export async function download(url: string): Promise<CurlResult> {
  const r = await curl(['-o', '/dev/null', url]);
  if (r.status !== 200) throw new Error(`GET ${url}: ${r.status}`);
  return r;
}

/** PUT `file` streamed from disk (curl -T), the way a publisher's CI would send it, with `headers` besides. */
export function upload(url: string, token: string, file: string, headers: Readonly<Record<string, string>> = {}): Promise<CurlResult> {
  const extra = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
  return curl(['-T', file, '-H', 'Expect:', '-H', 'Content-Type: application/octet-stream', '-H', `Authorization: Bearer ${token}`, ...extra, url]);
}

export interface WrkResult {
  readonly requestsPerSec: number;
  readonly bytesPerSec: number;
  readonly requests: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly latencyP50Ms: number | null;
  readonly latencyP99Ms: number | null;
  readonly raw: string;
}

const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

function ms(value: string, unit: string): number {
  const v = Number(value);
  return unit === 'us' ? v / 1000 : unit === 's' ? v * 1000 : unit === 'm' ? v * 60_000 : v;
}

export function parseWrk(raw: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(raw);
  const tps = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(raw);
  const reqs = /(\d+) requests in/.exec(raw);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(raw);
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)$/m.exec(raw);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)$/m.exec(raw);
  if (!rps || !reqs) throw new Error(`cannot read wrk's output:\n${raw}`);
  return {
    requestsPerSec: Number(rps[1]),
    bytesPerSec: tps ? Number(tps[1]) * UNITS[tps[2]!]! : 0,
    requests: Number(reqs[1]),
    errors: errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    latencyP50Ms: p50 ? ms(p50[1]!, p50[2]!) : null,
    latencyP99Ms: p99 ? ms(p99[1]!, p99[2]!) : null,
    raw,
  };
}

export interface WrkOptions {
  readonly connections: number;
  readonly threads: number;
  readonly seconds: number;
  readonly script?: string;
}

/** Runs wrk as a child without blocking this process (its signal handlers stay live while wrk runs). */
export async function wrk(url: string, o: WrkOptions): Promise<WrkResult> {
  const args = ['-t', String(o.threads), '-c', String(o.connections), '-d', `${o.seconds}s`, '--latency', ...(o.script ? ['-s', o.script] : []), url];
  return parseWrk((await execFileAsync('wrk', args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })).stdout);
}

export function wrkVersion(): string {
  try {
    execFileSync('wrk', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    // wrk -v prints its version and exits 1.
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n')[0] ?? 'unknown';
  }
  return 'unknown';
}

export function curlVersion(): string {
  return execFileSync('curl', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.split(' ').slice(0, 2).join(' ');
}

/**
 * A wrk script asking, per request, for one random 64 KiB block-aligned range of a `size`-byte
 * file (each wrk thread seeds its own generator; the same sequence for both servers).
 */
export function rangeScript(dir: string, size: number, block = 64 * 1024): string {
  const path = join(dir, `ranges-${block}.lua`);
  writeFileSync(
    path,
    `-- generated by bench/registry/clients.ts: a random ${block}-byte aligned range per request
local blocks = ${Math.floor(size / block)}
local block = ${block}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
function init(args)
  math.randomseed(12345 + (seed or 0))
end
function request()
  local start = math.random(0, blocks - 1) * block
  return wrk.format("GET", nil, { ["Range"] = "bytes=" .. start .. "-" .. (start + block - 1) })
end
`,
  );
  return path;
}
