/**
 * The registry's four performance targets (issue "Registry server" → Performance), each measured
 * against its baseline in the same run, runs interleaved (A B A B …) so that drift hits both alike:
 *
 * 1. full download of the ~512 MiB pack, one client (curl to /dev/null): ≥ 0.8× nginx's MB/s;
 * 2. random 64 KiB aligned ranges over 32 connections (wrk + Lua): ≥ 0.5× nginx's requests/s;
 * 3. GET /v1/packs/available and a manifest over 32 connections (wrk): ≥ 0.5× nginx serving the
 *    same bytes as static files;
 * 4. PUT of the ~512 MiB pack (verified and committed): ≥ 200 MB/s with the server's peak RSS
 *    (VmHWM) ≤ 150 MiB; plus where the time goes (probe-upload.ts) and a receive-only ceiling.
 *
 * Plus a sweep of download strategies and read sizes on a bare node:http server (probe-download.ts).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Verdict } from '../lib/context.js';
import { int, mib, passFail, ratio, secs, table } from '../lib/format.js';
import { median, run, samples, type Samples } from '../lib/proc.js';
import { interleave, mbps, spread } from './measure.js';
import { download, rangeScript, upload, wrk, type WrkResult } from './clients.js';
import type { RegistryCorpus } from './prepare.js';
import { freshRegistry, publish, publishHeaders } from './publish.js';
import { type Quiet } from './quiet.js';
import { type Child, procStatusKiB, startFloor } from './servers.js';

export const DOWNLOAD_TARGET = 0.8;
export const RANGES_TARGET = 0.5;
export const JSON_TARGET = 0.6;
export const UPLOAD_TARGET_MBPS = 200;
export const UPLOAD_RSS_TARGET_KIB = 150 * 1024;

export interface Options {
  readonly runs: number;
  /** wrk duration per run. */
  readonly seconds: number;
  readonly connections: number;
  readonly wrkThreads: number;
  readonly quick: boolean;
}

/** One registry deployment under test (single process, or clustered). */
export interface IqpUnderTest {
  readonly label: string;
  readonly child: Child;
  /** A build measured for comparison only (--compare): no verdict. */
  readonly comparison?: boolean;
}

export interface Env {
  readonly cliRoot: string;
  /** Builds whose uploads are measured (the current one first; --before adds another). */
  readonly builds: readonly { readonly label: string; readonly cliRoot: string }[];
  readonly work: string;
  readonly corpus: RegistryCorpus;
  readonly options: Options;
  readonly iqp: readonly IqpUnderTest[];
  /** The baselines: nginx with each worker_processes setting asked for; verdicts use the first. */
  readonly nginx: readonly { readonly label: string; readonly child: Child }[];
  readonly blobPath: string;
  /** Request paths on the registry and their static twins on nginx. */
  readonly paths: {
    readonly download: string;
    readonly available: string;
    readonly manifest: string;
  };
  readonly nginxPaths: { readonly download: string; readonly available: string; readonly manifest: string };
  quiet(label: string): Promise<Quiet>;
  settle(): Promise<void>;
  log(m: string): void;
}

export interface Section {
  readonly name: string;
  readonly markdown: string;
  readonly verdicts: readonly Verdict[];
  readonly data: unknown;
}

const runsOf = (s: Samples, f: (v: number) => string) => s.values.map(f).join(', ');

/**
 * One row per server: median (spread) and runs; for each registry deployment, its ratio to every
 * nginx baseline, and the verdict against the first.
 */
function compareRows(
  env: Env,
  res: Map<string, Samples>,
  goal: number,
  target: (label: string) => string,
  unit: string,
  fmt: (v: number) => string,
  references: readonly { readonly label: string }[] = [],
): { rows: string[][]; headers: string[]; verdicts: Verdict[] } {
  const bases = env.nginx.map((n) => ({ label: n.label, s: res.get(n.label)! }));
  const headers = ['server', `median ${unit}`, ...bases.map((b) => `vs ${b.label}`), 'target', 'result', `runs (${unit})`];
  const rows: string[][] = [];
  const verdicts: Verdict[] = [];
  for (const s of env.iqp) {
    const m = res.get(s.label)!;
    const r = m.median / bases[0]!.s.median;
    if (!s.comparison) verdicts.push({ target: target(s.label), measured: `${fmt(m.median)} vs ${fmt(bases[0]!.s.median)} ${unit}: ${ratio(r)}×`, goal: `≥ ${goal}× ${bases[0]!.label}`, pass: r >= goal });
    rows.push([s.label, `${fmt(m.median)} (${spread(m)})`, ...bases.map((b) => ratio(m.median / b.s.median)), `≥ ${goal}`, s.comparison ? `(${passFail(r >= goal).toLowerCase()})` : passFail(r >= goal), runsOf(m, fmt)]);
  }
  // References (no verdict): their ratios to nginx say what is reachable at all.
  for (const { label } of references) {
    const m = res.get(label)!;
    rows.push([label, `${fmt(m.median)} (${spread(m)})`, ...bases.map((b) => ratio(m.median / b.s.median)), '', '', runsOf(m, fmt)]);
  }
  for (const b of bases) rows.push([b.label, `${fmt(b.s.median)} (${spread(b.s)})`, ...bases.map((o) => (o === b ? '' : ratio(b.s.median / o.s.median))), '', '', runsOf(b.s, fmt)]);
  return { rows, headers, verdicts };
}

/** The variants of a measurement: every nginx baseline, then every registry deployment. */
function servers(env: Env, nginxPath: string, iqpPath: string, f: (label: string, url: string) => () => Promise<number>): (readonly [string, () => Promise<number>])[] {
  return [...env.nginx.map((n) => [n.label, f(n.label, n.child.url + nginxPath)] as const), ...env.iqp.map((s) => [s.label, f(s.label, s.child.url + iqpPath)] as const)];
}

/** The node:http floors (probe-floor.ts) for `file`: one per distinct process count of the registries under test. */
async function startFloors(env: Env, mode: 'json' | 'ranges', file: string): Promise<{ label: string; child: Child }[]> {
  const floors: { label: string; child: Child }[] = [];
  try {
    for (const n of [...new Set(env.iqp.map((s) => s.child.servingPids().length))]) {
      floors.push({ label: `node:http floor (${n === 1 ? '1 process' : `${n} workers`})`, child: await startFloor(env.cliRoot, mode, file, n) });
    }
    return floors;
  } catch (err) {
    await stopFloors(floors);
    throw err;
  }
}

async function stopFloors(floors: readonly { child: Child }[]): Promise<void> {
  for (const f of floors) await f.child.stop();
}

// ---------------------------------------------------------------------------------------------
// 1. Full download

export async function benchDownload(env: Env): Promise<Section> {
  const q = await env.quiet('1. full download');
  const size = env.corpus.big.size;
  const runs = Math.max(env.options.runs, 5);
  const variant = (url: string) => async () => {
    const r = await download(url);
    if (r.bytes !== size) throw new Error(`${url}: got ${r.bytes} bytes, expected ${size}`);
    return mbps(size, r.seconds);
  };
  env.log(`1. full download of ${mib(size)} MiB, ${runs} runs each…`);
  const res = await interleave(servers(env, env.nginxPaths.download, env.paths.download, (_l, url) => variant(url)), runs, () => env.settle());
  const { rows, headers, verdicts } = compareRows(env, res, DOWNLOAD_TARGET, (l) => `1. full download (${mib(size)} MiB, 1 client), ${l}`, 'MB/s', (x) => x.toFixed(0));
  const markdown = [
    `### 1. Full download, ${mib(size)} MiB pack, one client (curl -o /dev/null)`,
    '',
    `Load average at start: ${q.load}${q.warning ? ` (${q.warning})` : ''}. MB/s = 10^6 bytes/s; median of ${runs} interleaved runs after a warm-up (page cache hot).`,
    '',
    table(headers, rows),
  ].join('\n');
  return { name: 'download', markdown, verdicts, data: Object.fromEntries(res) };
}

// ---------------------------------------------------------------------------------------------
// Download strategies on a bare node:http server

export async function benchDownloadLevers(env: Env): Promise<Section> {
  const q = await env.quiet('download levers');
  const size = env.corpus.big.size;
  const specs: [string, string][] = env.options.quick
    ? [['stream', '64'], ['stream', '1024'], ['pool', '1024']]
    : [['sendfile', '64'], ['stream', '64'], ['stream', '256'], ['stream', '1024'], ['stream', '4096'], ['readahead', '1024'], ['pool', '256'], ['pool', '1024'], ['pool', '4096']];
  const probes: { label: string; url: string; stop: () => void }[] = [];
  try {
    for (const [strategy, kib] of specs) {
      const child = spawn(process.execPath, [join(env.cliRoot, 'dist', 'bench', 'registry', 'probe-download.js'), env.blobPath, strategy, kib], { stdio: ['ignore', 'pipe', 'ignore'] });
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          try {
            resolve((JSON.parse(out) as { url: string }).url);
          } catch {
            // not yet
          }
        });
        child.once('exit', (code) => reject(new Error(`probe-download ${strategy} ${kib} exited ${code}`)));
      });
      probes.push({ label: strategy === 'sendfile' ? 'Express res.sendFile (64 KiB)' : `${strategy}, ${kib} KiB reads`, url, stop: () => child.kill('SIGTERM') });
    }
    const runs = Math.max(3, Math.min(env.options.runs, 5));
    env.log(`download levers: ${probes.length} strategies × ${runs} runs…`);
    const variant = (url: string) => async () => {
      const r = await download(url);
      if (r.bytes !== size) throw new Error(`${url}: got ${r.bytes} bytes`);
      return mbps(size, r.seconds);
    };
    const nginx = env.nginx[0]!;
    const res = await interleave([[nginx.label, variant(nginx.child.url + env.nginxPaths.download)], ...probes.map((p) => [p.label, variant(p.url)] as const)], runs, () => env.settle());
    const base = res.get(nginx.label)!.median;
    const rows = [...res].map(([label, s]) => [label, `${s.median.toFixed(0)} (${spread(s)})`, ratio(s.median / base)]);
    const markdown = [
      '#### Download strategies on a bare node:http server (no Express, no registry)',
      '',
      `Load average at start: ${q.load}. probe-download.ts: \`stream\` = fs.createReadStream({ highWaterMark }) piped to the response; \`readahead\` = a read loop keeping the next read in flight while the previous chunk is written; \`pool\` = the same with a ring of 3 reused buffers. Median of ${runs} runs.`,
      '',
      table(['strategy', 'MB/s', `vs ${nginx.label}`], rows),
    ].join('\n');
    return { name: 'download-levers', markdown, verdicts: [], data: Object.fromEntries(res) };
  } finally {
    for (const p of probes) p.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Random 64 KiB ranges

function fileBytes(path: string, start: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, start);
    return buf;
  } finally {
    closeSync(fd);
  }
}

async function checkRange(url: string, path: string, start: number, length: number): Promise<void> {
  const r = await fetch(url, { headers: { range: `bytes=${start}-${start + length - 1}` } });
  const body = Buffer.from(await r.arrayBuffer());
  if (r.status !== 206 || !body.equals(fileBytes(path, start, length))) throw new Error(`${url}: range ${start}+${length} gave ${r.status}, ${body.length} bytes (wrong bytes)`);
}

export function checkWrk(label: string, r: WrkResult, expectBodyBytes: number | null): void {
  if (r.errors > 0 || r.non2xx > 0) throw new Error(`${label}: wrk saw ${r.errors} socket errors and ${r.non2xx} non-2xx responses\n${r.raw}`);
  // Transfer/sec includes headers; a 200 with the whole file instead of a 206 would show at once.
  if (expectBodyBytes !== null && r.bytesPerSec / r.requestsPerSec > expectBodyBytes * 1.1) throw new Error(`${label}: ${r.bytesPerSec / r.requestsPerSec} bytes per response\n${r.raw}`);
}

export async function benchRanges(env: Env): Promise<Section> {
  const q = await env.quiet('2. random ranges');
  const block = 64 * 1024;
  const size = env.corpus.big.size;
  for (const start of [0, block * 7, Math.floor(size / block - 1) * block]) {
    for (const n of env.nginx) await checkRange(n.child.url + env.nginxPaths.download, env.blobPath, start, block);
    for (const s of env.iqp) await checkRange(s.child.url + env.paths.download, env.blobPath, start, block);
  }
  const script = rangeScript(env.work, size, block);
  const o = env.options;
  const variant = (label: string, url: string) => async () => {
    const r = await wrk(url, { connections: o.connections, threads: o.wrkThreads, seconds: o.seconds, script });
    checkWrk(label, r, block + 1024);
    return r.requestsPerSec;
  };
  const floors = await startFloors(env, 'ranges', env.blobPath);
  let res: Map<string, Samples>;
  try {
    for (const f of floors) await checkRange(f.child.url, env.blobPath, block * 7, block);
    env.log(`2. random 64 KiB ranges, ${o.connections} connections, ${o.runs} × ${o.seconds} s each…`);
    const variants = [...servers(env, env.nginxPaths.download, env.paths.download, variant), ...floors.map((f) => [f.label, variant(f.label, f.child.url)] as const)];
    res = await interleave(variants, o.runs, () => env.settle());
  } finally {
    await stopFloors(floors);
  }
  const { rows, headers, verdicts } = compareRows(env, res, RANGES_TARGET, (l) => `2. random 64 KiB ranges (${o.connections} connections), ${l}`, 'req/s', int, floors);
  const markdown = [
    `### 2. Random 64 KiB ranges, ${o.connections} connections (wrk -t${o.wrkThreads} -c${o.connections} -d${o.seconds}s, Lua: a random aligned range per request)`,
    '',
    `Load average at start: ${q.load}${q.warning ? ` (${q.warning})` : ''}. Bodies checked against the file before the runs; wrk saw no errors and no non-2xx. Median of ${o.runs} interleaved runs. The node:http floor (probe-floor.ts) reads each range from a descriptor kept open into a fresh buffer, with no framework and no store: what Node alone reaches here.`,
    '',
    table(headers, rows),
  ].join('\n');
  return { name: 'ranges', markdown, verdicts, data: Object.fromEntries(res) };
}

// ---------------------------------------------------------------------------------------------
// 3. Cached JSON

export async function benchJson(env: Env): Promise<Section> {
  const o = env.options;
  const verdicts: Verdict[] = [];
  const sections: string[] = [];
  const data: Record<string, unknown> = {};
  for (const [name, iqpPath, nginxPath] of [
    ['GET /v1/packs/available', env.paths.available, env.nginxPaths.available],
    ['GET /v1/packs/{id}/{version}/manifest', env.paths.manifest, env.nginxPaths.manifest],
  ] as const) {
    const q = await env.quiet(`3. ${name}`);
    const expected = Buffer.from(await (await fetch(env.iqp[0]!.child.url + iqpPath)).arrayBuffer());
    for (const n of env.nginx) {
      const served = Buffer.from(await (await fetch(n.child.url + nginxPath)).arrayBuffer());
      if (!served.equals(expected)) throw new Error(`${n.label} does not serve the same bytes as ${iqpPath}`);
    }
    const variant = (label: string, url: string) => async () => {
      const r = await wrk(url, { connections: o.connections, threads: o.wrkThreads, seconds: o.seconds });
      checkWrk(label, r, expected.length + 1024);
      return r.requestsPerSec;
    };
    // The floor: bare node:http answering the same bytes, with as many processes as each registry.
    const file = join(env.work, `probe-json-${expected.length}.json`);
    writeFileSync(file, expected);
    const floors = await startFloors(env, 'json', file);
    try {
      env.log(`3. ${name} (${expected.length} bytes), ${o.runs} × ${o.seconds} s each…`);
      const variants = [...servers(env, nginxPath, iqpPath, variant), ...floors.map((f) => [f.label, variant(f.label, f.child.url + iqpPath)] as const)];
      const res = await interleave(variants, o.runs, () => env.settle());
      const c = compareRows(env, res, JSON_TARGET, (l) => `3. ${name} (${expected.length} B), ${l}`, 'req/s', int, floors);
      verdicts.push(...c.verdicts);
      sections.push(`#### ${name} (${expected.length} bytes)\n\nLoad average at start: ${q.load}${q.warning ? ` (${q.warning})` : ''}.\n\n${table(c.headers, c.rows)}`);
      data[name] = Object.fromEntries(res);
    } finally {
      await stopFloors(floors);
    }
  }
  const markdown = [
    `### 3. Cached JSON, ${o.connections} connections (wrk -t${o.wrkThreads} -c${o.connections} -d${o.seconds}s) vs nginx serving the same bytes as a static file`,
    '',
    `Median of ${o.runs} interleaved runs. The node:http floor (probe-floor.ts) answers the same bytes from memory with no framework and no store: what Node's HTTP layer alone reaches here.`,
    '',
    sections.join('\n\n'),
  ].join('\n');
  return { name: 'json', markdown, verdicts, data };
}

// ---------------------------------------------------------------------------------------------
// 4. Upload

interface UploadRun {
  readonly seconds: number;
  readonly mbps: number;
  readonly hwmKiB: number;
  readonly polledMaxKiB: number;
  readonly idleKiB: number;
}

async function oneUpload(env: Env, cliRoot: string, dataDir: string): Promise<UploadRun> {
  const reg = await freshRegistry(cliRoot, dataDir, env.corpus);
  try {
    // Publish one small pack first, so the upload measured is not the server's first request.
    await publish(reg, env.corpus.small[0]!.path);
    await new Promise((r) => setTimeout(r, 200));
    const pid = reg.server.pid;
    const idleKiB = procStatusKiB(pid, 'VmRSS') ?? 0;
    let polledMaxKiB = idleKiB;
    const timer = setInterval(() => {
      const v = procStatusKiB(pid, 'VmRSS');
      if (v !== null && v > polledMaxKiB) polledMaxKiB = v;
    }, 20);
    // Read before the clock starts, as `iqp publish` reads it before it sends the first byte.
    const headers = await publishHeaders(env.corpus.big.path);
    await env.settle();
    let r;
    try {
      r = await upload(`${reg.server.url}/v1/admin/packs`, reg.token, env.corpus.big.path, headers);
    } finally {
      clearInterval(timer);
    }
    if (r.status !== 201) throw new Error(`upload: ${r.status} ${r.body}`);
    const hwmKiB = procStatusKiB(pid, 'VmHWM') ?? 0;
    return { seconds: r.seconds, mbps: mbps(env.corpus.big.size, r.seconds), hwmKiB, polledMaxKiB, idleKiB };
  } finally {
    await reg.server.stop();
  }
}

export async function benchUpload(env: Env): Promise<Section> {
  const q = await env.quiet('4. upload');
  const size = env.corpus.big.size;
  const dataDir = join(env.work, 'upload-data');
  const runs = env.options.runs;
  env.log(`4. upload of ${mib(size)} MiB, ${runs} runs per build (a fresh data directory and server each)…`);
  for (const b of env.builds) await oneUpload(env, b.cliRoot, dataDir); // warm-up
  const byBuild = new Map<string, UploadRun[]>(env.builds.map((b) => [b.label, []]));
  for (let i = 0; i < runs; i++) for (const b of env.builds) byBuild.get(b.label)!.push(await oneUpload(env, b.cliRoot, dataDir));
  const results = byBuild.get(env.builds[0]!.label)!;
  const speed = samples(results.map((r) => r.mbps));
  const hwm = samples(results.map((r) => r.hwmKiB));
  const passSpeed = speed.median >= UPLOAD_TARGET_MBPS;
  const passRss = hwm.max <= UPLOAD_RSS_TARGET_KIB;
  const verdicts: Verdict[] = [
    { target: `4. upload ${mib(size)} MiB: verified and committed`, measured: `${speed.median.toFixed(0)} MB/s (${secs(median(results.map((r) => r.seconds)))} s)`, goal: `≥ ${UPLOAD_TARGET_MBPS} MB/s`, pass: passSpeed },
    { target: '4. upload: server peak RSS (VmHWM)', measured: `${mib(hwm.max * 1024)} MiB max (median ${mib(hwm.median * 1024)})`, goal: `≤ ${UPLOAD_RSS_TARGET_KIB / 1024} MiB`, pass: passRss },
  ];

  // Where the time goes: library phases in a fresh process, and a receive-only ceiling.
  const q2 = await env.quiet('4. upload phases');
  env.log('4. upload phases (probe-upload.js) and receive-only ceiling…');
  const phaseRuns: Record<string, number>[] = [];
  const probe = join(env.cliRoot, 'dist', 'bench', 'registry', 'probe-upload.js');
  for (let i = 0; i < Math.max(3, Math.min(runs, 5)); i++) {
    await env.settle();
    phaseRuns.push(JSON.parse(run({ argv: [process.execPath, probe, 'phases', env.corpus.big.path, join(env.work, 'scratch')] }).stdout) as Record<string, number>);
  }
  const med = (k: string) => median(phaseRuns.map((p) => p[k]!));
  const sink = spawn(process.execPath, [probe, 'sink'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const sinkUrl = await new Promise<string>((resolve) => {
    let out = '';
    sink.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      try {
        resolve((JSON.parse(out) as { url: string }).url);
      } catch {
        // not yet
      }
    });
  });
  const receive: number[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      await env.settle();
      const r = await upload(sinkUrl, 'none', env.corpus.big.path);
      if (i > 0) receive.push(mbps(size, r.seconds));
    }
  } finally {
    sink.kill('SIGTERM');
  }
  const phaseRow = (label: string, s: number, note = '') => [label, `${secs(s)} s`, `${mbps(size, s).toFixed(0)} MB/s`, note];
  const rows = [
    phaseRow('SHA-256 of the archive alone', med('sha256')),
    phaseRow('zstd decompression alone', med('decompress')),
    phaseRow('readPack: zstd + tar + SHA-256 of archive and entries', med('readPack')),
    phaseRow('readPack + spilling content.sqlite to a temp file', med('readPackSpill')),
    phaseRow('PRAGMA integrity_check of the spilled copy', med('integrityCheck')),
    phaseRow('writing the staged blob in 64 KiB writes', med('stageWrite')),
    phaseRow('fsync of the staged blob', med('fsync')),
    ['receiving the body only (bare node:http sink, curl -T)', '', `${median(receive).toFixed(0)} MB/s`, ''],
  ];
  const uploadRows = [...byBuild].flatMap(([label, list]) => {
    const sp = samples(list.map((r) => r.mbps));
    return [
      ...list.map((r, i) => [label, `${i + 1}`, `${secs(r.seconds)} s`, `${r.mbps.toFixed(0)} MB/s`, `${mib(r.hwmKiB * 1024)} MiB`, `${mib(r.polledMaxKiB * 1024)} MiB`, `${mib(r.idleKiB * 1024)} MiB`]),
      [label, 'median', `${secs(median(list.map((r) => r.seconds)))} s`, `${sp.median.toFixed(0)} MB/s (${spread(sp)})`, `${mib(median(list.map((r) => r.hwmKiB)) * 1024)} MiB`, '', ''],
    ];
  });
  const markdown = [
    `### 4. Upload of the ${mib(size)} MiB pack (PUT /v1/admin/packs with curl -T, verified and committed)`,
    '',
    `Load average at start: ${q.load}${q.warning ? ` (${q.warning})` : ''}. Each run: a fresh data directory and server, the key registered, one small pack published, then the big one; time = curl's time_total (until the 201).`,
    '',
    table(['target', 'measured', 'goal', 'result'], verdicts.map((v) => [v.target, v.measured, v.goal, passFail(v.pass)])),
    '',
    table(['build', 'run', 'time', 'rate', 'VmHWM (peak)', 'VmRSS max (polled every 20 ms)', 'VmRSS before the upload'], uploadRows),
    '',
    `Where the time goes (probe-upload.js: the same library calls one at a time on the file, page cache hot; median of ${phaseRuns.length}; load at start ${q2.load}):`,
    '',
    table(['part', 'time', 'rate', ''], rows),
  ].join('\n');
  return { name: 'upload', markdown, verdicts, data: { runs: Object.fromEntries(byBuild), phases: phaseRuns, receiveMBps: receive } };
}
