/** The sync benchmark's tables and verdicts, from the figures of both sides. */
import type { SyncBenchData } from '../sync.js';
import type { Verdict } from './context.js';
import { int, mib, passFail, ratio, table } from './format.js';
import { median } from './proc.js';
import type { Stats } from './sync-measure.js';
import type { MainFigures, ScalePart, SideFigures } from './sync-run.js';

export const PUSH_RATIO_GOAL = 5;
export const PUSH_RATE_GOAL = 20_000;
export const PULL_RATIO_GOAL = 5;
export const PULL_RATE_GOAL = 100_000;
export const LATENCY_GROWTH_GOAL = 1.5;

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const msStats = (s: Stats) => `${ms(s.median)} ms (p95 ${ms(s.p95)})`;
const kib = (k: number | null) => (k === null ? '—' : `${mib(k * 1024)} MiB`);
const dash = '—';

export function syncReport(d: SyncBenchData): { markdown: string; verdicts: Verdict[] } {
  const p = d.peer?.figures ?? null;
  const o = d.ours?.figures ?? null;
  const opts = d.options;
  const verdicts: Verdict[] = [];
  const rows: string[][] = [];
  const judge = (target: string, measured: string, goal: string, pass: boolean) => {
    verdicts.push({ target, measured, goal, pass });
    return passFail(pass);
  };

  /**
   * Ours over the peer's for one figure: the median of each round's ratio (the peer's round, then
   * ours right after it), so drift in the machine's speed between rounds does not enter the ratio.
   */
  const paired = (get: (r: MainFigures) => number): { ratio: number; each: string } | null => {
    if (!p || !o) return null;
    const n = Math.min(p.rounds.length, o.rounds.length);
    const each = Array.from({ length: n }, (_, i) => ({ peer: get(p.rounds[i]!), ours: get(o.rounds[i]!) }));
    return { ratio: median(each.map((r) => r.ours / r.peer)), each: each.map((r) => `${int(r.peer)} / ${int(r.ours)} (${ratio(r.ours / r.peer)}×)`).join(' · ') };
  };
  const roundsNote = (f: SideFigures | null) => (f && f.rounds.length > 1 ? `, median of ${f.rounds.length} rounds` : '');
  const many = (p?.rounds.length ?? 0) > 1;
  const ofRounds = many ? ", the median of the rounds' ratios" : '';
  const medians = many ? ', each side’s median round' : '';

  // Push and pull throughput.
  const pushWhat = `push: mutations/s, ${opts.batch} a request, ${opts.clients} clients, ${int(opts.push)} documents${roundsNote(o ?? p)}`;
  const pushPaired = paired((r) => r.push.perSecond);
  const pushRatio = pushPaired?.ratio ?? null;
  rows.push([
    pushWhat,
    p ? int(p.push.perSecond) : dash,
    o ? int(o.push.perSecond) : dash,
    pushRatio === null ? dash : `${ratio(pushRatio)}×`,
    `≥ ${PUSH_RATIO_GOAL}×`,
    pushRatio === null ? dash : judge('sync push vs pouchdb-server _bulk_docs', `${ratio(pushRatio)}×${ofRounds} (${int(o!.push.perSecond)} vs ${int(p!.push.perSecond)}/s${medians})`, `≥ ${PUSH_RATIO_GOAL}×`, pushRatio >= PUSH_RATIO_GOAL),
  ]);
  rows.push([
    'push: mutations/s, ours alone',
    dash,
    o ? int(o.push.perSecond) : dash,
    dash,
    `≥ ${int(PUSH_RATE_GOAL)}/s`,
    o ? judge('sync push mutations/s', int(o.push.perSecond), `≥ ${int(PUSH_RATE_GOAL)}`, o.push.perSecond >= PUSH_RATE_GOAL) : dash,
  ]);
  if (pushPaired && p!.rounds.length > 1) rows.push(['push: each round, pouchdb / iqp (ratio)', dash, dash, pushPaired.each, dash, dash]);
  rows.push(['push: one request', p ? msStats(p.push.requestMs) : dash, o ? msStats(o.push.requestMs) : dash, dash, dash, dash]);
  const pullWhat = `pull: changes/s, pages of ${opts.page}, ${opts.clients} devices, whole feed of ${int(opts.push)} for ${opts.seconds} s${roundsNote(o ?? p)}`;
  const pullPaired = paired((r) => r.pull.perSecond);
  const pullRatio = pullPaired?.ratio ?? null;
  rows.push([
    pullWhat,
    p ? int(p.pull.perSecond) : dash,
    o ? int(o.pull.perSecond) : dash,
    pullRatio === null ? dash : `${ratio(pullRatio)}×`,
    `≥ ${PULL_RATIO_GOAL}×`,
    pullRatio === null ? dash : judge('sync pull vs pouchdb-server _changes', `${ratio(pullRatio)}×${ofRounds} (${int(o!.pull.perSecond)} vs ${int(p!.pull.perSecond)}/s${medians})`, `≥ ${PULL_RATIO_GOAL}×`, pullRatio >= PULL_RATIO_GOAL),
  ]);
  rows.push([
    'pull: changes/s, ours alone',
    dash,
    o ? int(o.pull.perSecond) : dash,
    dash,
    `≥ ${int(PULL_RATE_GOAL)}/s`,
    o ? judge('sync pull changes/s', int(o.pull.perSecond), `≥ ${int(PULL_RATE_GOAL)}`, o.pull.perSecond >= PULL_RATE_GOAL) : dash,
  ]);
  if (pullPaired && p!.rounds.length > 1) rows.push(['pull: each round, pouchdb / iqp (ratio)', dash, dash, pullPaired.each, dash, dash]);
  rows.push(['pull: one page', p ? msStats(p.pull.pageMs) : dash, o ? msStats(o.pull.pageMs) : dash, dash, dash, dash]);
  // CPU per operation: steadier than rates when other processes share the cores.
  const perPush = (f: SideFigures) => (f.push.cpu.serverSeconds === null ? dash : `${((f.push.cpu.serverSeconds * 1000) / (f.push.mutations / opts.batch)).toFixed(1)} ms`);
  const perPage = (f: SideFigures) => (f.pull.cpu.serverSeconds === null ? dash : `${((f.pull.cpu.serverSeconds * 1000) / (f.pull.changes / opts.page)).toFixed(1)} ms`);
  const cpuRatio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? dash : `${ratio(a / b)}×`);
  rows.push([
    `push: server CPU per request of ${opts.batch} (clients: ${p ? ((p.push.cpu.clientSeconds * 1000) / (p.push.mutations / opts.batch)).toFixed(1) : dash} / ${o ? ((o.push.cpu.clientSeconds * 1000) / (o.push.mutations / opts.batch)).toFixed(1) : dash} ms)`,
    p ? perPush(p) : dash,
    o ? perPush(o) : dash,
    p && o ? cpuRatio(p.push.cpu.serverSeconds, o.push.cpu.serverSeconds) : dash,
    dash,
    dash,
  ]);
  rows.push([
    `pull: server CPU per page of ${opts.page} (clients: ${p ? ((p.pull.cpu.clientSeconds * 1000) / (p.pull.changes / opts.page)).toFixed(1) : dash} / ${o ? ((o.pull.cpu.clientSeconds * 1000) / (o.pull.changes / opts.page)).toFixed(1) : dash} ms)`,
    p ? perPage(p) : dash,
    o ? perPage(o) : dash,
    p && o && p.pull.cpu.serverSeconds !== null && o.pull.cpu.serverSeconds !== null ? cpuRatio(p.pull.cpu.serverSeconds / p.pull.changes, o.pull.cpu.serverSeconds / o.pull.changes) : dash,
    dash,
    dash,
  ]);
  rows.push([
    'pull: bytes per change (response body)',
    p ? int(p.pull.bytes / p.pull.changes) : dash,
    o ? int(o.pull.bytes / o.pull.changes) : dash,
    dash,
    dash,
    dash,
  ]);

  // Page latency against the size of the store.
  const latencyRows: string[][] = [];
  const pages = [
    ['middle', `a page of ${opts.page} from the middle`],
    ['newest', `the newest page of ${opts.page}`],
    ['head', 'a pull at head (nothing new)'],
  ] as const;
  for (const [key, what] of pages) {
    const growth = o?.large ? o.large.latency[key].median / o.small.latency[key].median : null;
    latencyRows.push([
      what,
      p ? msStats(p.small.latency[key]) : dash,
      p?.large ? msStats(p.large.latency[key]) : dash,
      o ? msStats(o.small.latency[key]) : dash,
      o?.large ? msStats(o.large.latency[key]) : dash,
      growth === null ? dash : `${ratio(growth)}×`,
      `≤ ${LATENCY_GROWTH_GOAL}×`,
      growth === null
        ? dash
        : judge(
            `sync pull latency, ${what}, ${int(o!.large!.documents)} vs ${int(o!.small.documents)} stored`,
            `${ratio(growth)}× (${ms(o!.large!.latency[key].median)} vs ${ms(o!.small.latency[key].median)} ms)`,
            `≤ ${LATENCY_GROWTH_GOAL}×`,
            growth <= LATENCY_GROWTH_GOAL,
          ),
    ]);
  }

  // Filling the stores, one device's pass, memory and disk.
  const fill = (s: ScalePart | null | undefined) =>
    s ? `${int(s.documents)} in ${s.fill.seconds.toFixed(1)} s: ${int(s.fill.perSecond)}/s (first tenth ${int(s.fill.tenths[0] ?? 0)}/s, last ${int(s.fill.tenths[s.fill.tenths.length - 1] ?? 0)}/s)` : dash;
  const pass = (s: ScalePart | null | undefined) => (s ? `${s.pass.seconds.toFixed(1)} s: ${int(s.pass.perSecond)}/s` : dash);
  const side = (f: SideFigures | null, get: (f: SideFigures) => string) => (f ? get(f) : dash);
  const scaleRows: string[][] = [
    ['fill the small store (push, as above)', side(p, (f) => fill(f.small)), side(o, (f) => fill(f.small))],
    ['fill the large store (push, as above)', side(p, (f) => fill(f.large)), side(o, (f) => fill(f.large))],
    ['one device pulls the small store, from the start', side(p, (f) => pass(f.small)), side(o, (f) => pass(f.small))],
    ['one device pulls the large store, from the start', side(p, (f) => pass(f.large)), side(o, (f) => pass(f.large))],
    ['peak RSS while pushing (main part)', side(p, (f) => kib(f.push.peakRssKiB)), side(o, (f) => kib(f.push.peakRssKiB))],
    ['peak RSS while pulling (main part)', side(p, (f) => kib(f.pull.peakRssKiB)), side(o, (f) => kib(f.pull.peakRssKiB))],
    ['peak RSS while filling the large store', side(p, (f) => kib(f.large?.fill.peakRssKiB ?? null)), side(o, (f) => kib(f.large?.fill.peakRssKiB ?? null))],
    ['peak RSS while pulling the large store (one device)', side(p, (f) => kib(f.large?.pass.peakRssKiB ?? null)), side(o, (f) => kib(f.large?.pass.peakRssKiB ?? null))],
    ['store on disk after the main push', side(p, (f) => `${mib(f.storeBytes)} MiB`), side(o, (f) => `${mib(f.storeBytes)} MiB`)],
    ['store on disk, large', side(p, (f) => (f.large ? `${mib(f.large.storeBytes)} MiB` : dash)), side(o, (f) => (f.large ? `${mib(f.large.storeBytes)} MiB` : dash))],
    ['429/503 answers waited out', side(p, (f) => int(f.retries)), side(o, (f) => int(f.retries))],
    [
      'load average (1, 5, 15 min) at the start of: main / small / large',
      side(p, (f) => [f.load, f.small.load, f.large?.load ?? dash].join(' / ')),
      side(o, (f) => [f.load, f.small.load, f.large?.load ?? dash].join(' / ')),
    ],
  ];

  const small = int(opts.small);
  const large = int(opts.large);
  const notes = [
    `Documents: ${d.payloadBytes} bytes of JSON payload each (seeded prose, seed ${opts.seed}), unique ids, the same for both; upserts of new entities (iqp) and new documents (pouchdb).`,
    d.peer
      ? `Peer: ${d.peer.info.package} → pouchdb-server ${d.peer.info.version}, ${d.peer.info.storage}; \`node pouchdb-server ${d.peer.info.flags}\` with log level "warning" (installed under ${d.peer.info.dir}${d.peer.info.installedNow ? ' by this run' : ''}, npm ${d.peer.info.npm}). leveldown writes without fsync by default; iqp waits for an fdatasync of its WAL before answering a push.`
      : 'Peer: not measured (--no-peer).',
    d.ours ? `Ours: ${d.ours.version}, SQLite on disk, ${d.options.workers === 1 ? 'one process (`--workers 1`)' : `a primary and ${d.options.workers} worker processes (\`--workers ${d.options.workers}\`; CPU and peak RSS are summed over all of them)`}; set up with: ${d.ours.setup.map((c) => `\`${c}\``).join(', ')}.` : 'Ours: not measured (--no-ours).',
    `Main part (push, then pull): ${opts.rounds} round(s) per side${opts.rounds > 1 ? ', interleaved (pouchdb, iqp, pouchdb, iqp, …), each on fresh servers and folders; a side\'s rates are its median round, the ratios the median of each round\'s ratio (a pouchdb round against the iqp round right after it), and its CPU, request times and peak RSS those of its median round' : ''}.`,
    'Server CPU: user + system seconds of the server\'s processes (all threads, /proc/<pid>/stat) over the part, per request; its ratio column is pouchdb\'s over ours (above 1: ours uses less). The clients\' CPU (this process, all its threads) is in brackets, pouchdb / ours.',
    `Clients: in this process, on ${opts.clientThreads} thread(s) (client c on thread c mod ${opts.clientThreads}; with more than one, worker threads with peer clients of their own), undici keep-alive, one connection per client; every answer is parsed and checked (all stored, every pass over the feed returns each document once). Page latency: one client, ${opts.reps} pulls at each cursor, interleaved, after 3 warm-ups; cursors from one pass over the feed. Peak RSS: the server's VmHWM (summed over its processes), reset through /proc/<pid>/clear_refs at the start of each part.`,
    `Load average at the start ${d.loadAverage.start}, at the end ${d.loadAverage.end}; ${d.minutes.toFixed(1)} min.`,
  ];

  const markdown = [
    '### Sync plugin vs pouchdb-server',
    '',
    table(['measured', 'pouchdb-server', 'iqp sync', 'ratio', 'goal', 'result'], rows),
    '',
    opts.large > 0 ? `Time of one pull (median and p95), by the size of the store (${small} and ${large} documents):` : `Time of one pull (median and p95), on a store of ${small} documents (no large store: --large 0):`,
    '',
    opts.large > 0
      ? table(['pull', `pouchdb ${small}`, `pouchdb ${large}`, `iqp ${small}`, `iqp ${large}`, `iqp ${large} / ${small}`, 'goal', 'result'], latencyRows)
      : table(['pull', `pouchdb ${small}`, `iqp ${small}`], latencyRows.map((r) => [r[0]!, r[1]!, r[3]!])),
    '',
    table(['measured', 'pouchdb-server', 'iqp sync'], scaleRows),
    '',
    ...notes.map((n) => `- ${n}`),
  ].join('\n');
  return { markdown, verdicts };
}
