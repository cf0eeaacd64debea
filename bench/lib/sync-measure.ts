/**
 * The measurements, the same for both peers: pushing documents in fixed batches from a fixed
 * number of concurrent clients, pulling the whole feed repeatedly from as many clients, one
 * client's pass over the feed that notes every page's cursor, and the time of single pages at
 * chosen cursors. Peak RSS per phase comes from the server's /proc/<pid>/status (VmHWM), reset
 * between phases through /proc/<pid>/clear_refs where the kernel allows it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { SyncPeer, SyncServer } from './sync-client.js';
import type { ClientLoad } from './sync-load.js';

export interface Stats {
  readonly median: number;
  readonly p95: number;
  readonly min: number;
  readonly max: number;
  readonly count: number;
}

export function stats(values: readonly number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(s.length * q))] ?? Number.NaN;
  const mid = Math.floor(s.length / 2);
  const median = s.length === 0 ? Number.NaN : s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, p95: at(0.95), min: s[0] ?? Number.NaN, max: s[s.length - 1] ?? Number.NaN, count: s.length };
}

/**
 * KiB from /proc/<pid>/status summed over a server's processes (a registry with workers is several),
 * or null (not Linux, or one is gone). For VmHWM the sum of each process's peak: at most what they
 * held at once.
 */
export function procKiB(pids: readonly number[], field: 'VmHWM' | 'VmRSS'): number | null {
  let sum = 0;
  for (const pid of pids) {
    try {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (!m) return null;
      sum += Number(m[1]);
    } catch {
      return null;
    }
  }
  return sum;
}

/**
 * CPU seconds (user + system, all threads) the process has used, from /proc/<pid>/stat, or null.
 * On a shared machine the server's CPU per operation is steadier than its rate, which other
 * processes' load lowers.
 */
export function procCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (USER_HZ, 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** CPU the server, its database (when it has one of its own) and this process (the clients) used over a part. */
export interface CpuUse {
  readonly serverSeconds: number | null;
  readonly databaseSeconds: number | null;
  readonly clientSeconds: number;
}

/** CPU seconds summed over a server's processes, or null if one is gone. */
export function serverCpu(pids: readonly number[]): number | null {
  let sum = 0;
  for (const pid of pids) {
    const s = procCpuSeconds(pid);
    if (s === null) return null;
    sum += s;
  }
  return sum;
}

function cpuMeter(s: SyncServer): () => CpuUse {
  const server = serverCpu(s.pids);
  const database = s.databaseCpu?.() ?? null;
  const client = process.cpuUsage();
  return () => {
    const now = serverCpu(s.pids);
    const dbNow = s.databaseCpu?.() ?? null;
    const c = process.cpuUsage(client);
    return {
      serverSeconds: server === null || now === null ? null : now - server,
      databaseSeconds: database === null || dbNow === null ? null : dbNow - database,
      clientSeconds: (c.user + c.system) / 1e6,
    };
  };
}

/** Resets each process's peak RSS to its current RSS (Linux ≥ 4.0, our own children); false if not allowed. */
export function resetPeak(pids: readonly number[]): boolean {
  try {
    for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface PushResult {
  readonly mutations: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Time of one push request, ms. */
  readonly requestMs: Stats;
  /** Rates over consecutive tenths of the documents (how the rate holds up as the store grows). */
  readonly tenths: readonly number[];
  readonly peakRssKiB: number | null;
  readonly cpu: CpuUse;
}

/**
 * Pushes documents [first, first + count) in batches of `batch` from `clients` loops, each taking
 * the next batch from a shared counter, on the load's threads.
 */
export async function pushAll(
  load: ClientLoad,
  first: number,
  count: number,
  batch: number,
  clients: number,
  progress?: (done: number, seconds: number) => void,
): Promise<PushResult> {
  const { server } = load.peer;
  const counters = new SharedArrayBuffer(8);
  const done = new Int32Array(counters);
  const hadReset = resetPeak(server.pids);
  const cpu = cpuMeter(server);
  const started = performance.timeOrigin + performance.now();
  const ticker = progress ? setInterval(() => progress(Atomics.load(done, 1), (performance.timeOrigin + performance.now() - started) / 1000), 10_000) : null;
  let outs;
  try {
    outs = await load.run(clients, (mine) => ({ kind: 'push', clients: mine, first, count, batch, counters }));
  } finally {
    if (ticker) clearInterval(ticker);
  }
  const seconds = (performance.timeOrigin + performance.now() - started) / 1000;
  const marks = outs.flatMap((o) => o.marks);
  const tenthEnds: number[] = [];
  for (let j = 1; j <= 10; j++) {
    let at = Number.POSITIVE_INFINITY;
    for (let i = 0; i < marks.length; i += 2) if (marks[i + 1]! >= (count * j) / 10 && marks[i]! < at) at = marks[i]!;
    tenthEnds.push(at);
  }
  const tenths = tenthEnds.map((t, i) => count / 10 / ((t - (i === 0 ? started : tenthEnds[i - 1]!)) / 1000));
  return { mutations: count, seconds, perSecond: count / seconds, requestMs: stats(outs.flatMap((o) => o.times)), tenths, peakRssKiB: hadReset ? procKiB(server.pids, 'VmHWM') : null, cpu: cpu() };
}

export interface PullResult {
  readonly changes: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Whole passes over the feed completed by all clients together. */
  readonly passes: number;
  readonly pageMs: Stats;
  readonly bytes: number;
  readonly peakRssKiB: number | null;
  readonly cpu: CpuUse;
}

/**
 * `clients` devices each pull the whole feed from the beginning, page by page, and start again at
 * the end, until `seconds` have passed (each finishes the page it is on), on the load's threads.
 * Every completed pass must have returned exactly `expected` changes.
 */
export async function pullRepeatedly(load: ClientLoad, clients: number, seconds: number, limit: number, expected: number): Promise<PullResult> {
  const { server } = load.peer;
  const hadReset = resetPeak(server.pids);
  const cpu = cpuMeter(server);
  const started = performance.timeOrigin + performance.now();
  const outs = await load.run(clients, (mine) => ({ kind: 'pull', clients: mine, end: started + seconds * 1000, limit, expected }));
  const elapsed = (performance.timeOrigin + performance.now() - started) / 1000;
  const sum = (f: (o: (typeof outs)[number]) => number) => outs.reduce((n, o) => n + f(o), 0);
  const changes = sum((o) => o.changes);
  return {
    changes,
    seconds: elapsed,
    perSecond: changes / elapsed,
    passes: sum((o) => o.passes),
    pageMs: stats(outs.flatMap((o) => o.times)),
    bytes: sum((o) => o.bytes),
    peakRssKiB: hadReset ? procKiB(server.pids, 'VmHWM') : null,
    cpu: cpu(),
  };
}

export interface Pass {
  readonly changes: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** cursors[k]: the cursor page k was pulled with (cursors[0] is null); counts[k]: its changes. */
  readonly cursors: ReadonlyArray<string | null>;
  readonly counts: readonly number[];
  /** The cursor after the last page (at head). */
  readonly head: string;
  readonly peakRssKiB: number | null;
}

/** One client pulls the whole feed once, noting each page's cursor. */
export async function onePass(peer: SyncPeer, limit: number, expected: number): Promise<Pass> {
  const cursors: Array<string | null> = [];
  const counts: number[] = [];
  let cursor: string | null = null;
  let changes = 0;
  const hadReset = resetPeak(peer.server.pids);
  const started = performance.now();
  for (;;) {
    const page = await peer.pull(0, cursor, limit);
    cursors.push(cursor);
    counts.push(page.count);
    changes += page.count;
    cursor = page.cursor;
    if (!page.more) break;
  }
  const seconds = (performance.now() - started) / 1000;
  if (changes !== expected) throw new Error(`${peer.name}: a pass over the feed gave ${changes} changes, not ${expected}`);
  return { changes, seconds, perSecond: changes / seconds, cursors, counts, head: cursor, peakRssKiB: hadReset ? procKiB(peer.server.pids, 'VmHWM') : null };
}

export interface Latency {
  /** A page of `limit` from the middle of the feed. */
  readonly middle: Stats;
  /** The newest full page (the last `limit` changes before head). */
  readonly newest: Stats;
  /** A pull at head: nothing new (what a device that is up to date sends). */
  readonly head: Stats;
}

/** Times single pulls, one at a time, at three cursors of a pass, interleaved, after warm-ups. */
export async function pageLatency(peer: SyncPeer, pass: Pass, limit: number, reps: number): Promise<Latency> {
  const full = pass.counts.map((c, k) => (c === limit ? k : -1)).filter((k) => k >= 0);
  if (full.length === 0) throw new Error(`${peer.name}: no full page of ${limit} in the feed`);
  const middleK = full[Math.floor(full.length / 2)]!;
  const newestK = full[full.length - 1]!;
  const points = { middle: pass.cursors[middleK]!, newest: pass.cursors[newestK]!, head: pass.head } as const;
  const times: Record<keyof typeof points, number[]> = { middle: [], newest: [], head: [] };
  for (let r = -3; r < reps; r++) {
    for (const key of Object.keys(points) as Array<keyof typeof points>) {
      const t0 = performance.now();
      const page = await peer.pull(0, points[key], limit);
      const ms = performance.now() - t0;
      const want = key === 'head' ? 0 : limit;
      if (page.count !== want) throw new Error(`${peer.name}: the ${key} page had ${page.count} changes, not ${want}`);
      if (r >= 0) times[key].push(ms);
    }
  }
  return { middle: stats(times.middle), newest: stats(times.newest), head: stats(times.head) };
}
