/**
 * Whole-pack downloads by several clients at once (undici keep-alive, in this process), from a
 * registry keeping its blobs on disk, one proxying them from the bucket, and one answering 302 to
 * a presigned URL of the bucket that the client then follows. Every answer's status and size is
 * checked, and the SHA-256 of one download in eight (and each client's first).
 */
import { createHash } from 'node:crypto';
import { Agent, request } from 'undici';
import { int, table } from '../lib/format.js';
import { samples } from '../lib/proc.js';
import { serverCpu } from '../lib/sync-measure.js';
import { STORAGE_LABELS, type StorageKind } from './backends.js';
import { interleaveRuns } from './measure.js';
import { downloadPath } from './storage-setup.js';
import { configTable, quietLine, type StorageEnv } from './storage-targets.js';
import type { Section } from './targets.js';

const HASH_EVERY = 8;

interface DownloadRun {
  readonly mbps: number;
  readonly downloads: number;
  readonly hashed: number;
  /** CPU seconds per download: the registry's processes, and s3rver's. */
  readonly registryCpuMs: number;
  readonly s3rverCpuMs: number;
}

const cpu = (pids: readonly number[]) => serverCpu(pids) ?? Number.NaN;

async function readBody(body: AsyncIterable<Buffer>, hash: boolean): Promise<{ bytes: number; sha256: string | null }> {
  const h = hash ? createHash('sha256') : null;
  let bytes = 0;
  for await (const chunk of body) {
    bytes += chunk.length;
    h?.update(chunk);
  }
  return { bytes, sha256: h ? h.digest('hex') : null };
}

/** One download, checked: a 200 with the pack, or (redirect) a 302 with its headers and then a 200 from the bucket. */
async function downloadOnce(kind: StorageKind, url: string, agents: { registry: Agent; bucket: Agent }, bucketOrigin: string, expect: { size: number; sha256: string }, hash: boolean): Promise<void> {
  let r = await request(url, { dispatcher: agents.registry });
  if (kind === 'pg-s3-redirect') {
    const location = String(r.headers['location'] ?? '');
    await r.body.dump();
    if (r.statusCode !== 302 || r.headers['x-iqp-sha256'] !== expect.sha256 || !location.startsWith(`${bucketOrigin}/`)) {
      throw new Error(`${kind}: ${r.statusCode}, X-Iqp-Sha256 ${String(r.headers['x-iqp-sha256'])}, Location ${location.slice(0, 120)}: not a redirect to the bucket`);
    }
    r = await request(location, { dispatcher: agents.bucket });
  }
  const got = await readBody(r.body, hash);
  if (r.statusCode !== 200 || got.bytes !== expect.size || (got.sha256 !== null && got.sha256 !== expect.sha256)) {
    throw new Error(`${kind}: download answered ${r.statusCode} with ${got.bytes} bytes (sha256 ${got.sha256 ?? 'not checked'}), not ${expect.size} bytes of ${expect.sha256}`);
  }
}

export async function benchDownload(env: StorageEnv): Promise<Section> {
  const q = await env.quiet('download');
  const o = env.options;
  const pack = env.corpus.download;
  const kinds = (['sqlite-fs', 'pg-s3-proxy', 'pg-s3-redirect'] as const).filter((k) => env.standing.has(k));
  const bucketOrigin = env.backends.s3.endpoint;
  const agents = new Map(kinds.map((k) => [k, { registry: new Agent({ connections: o.downloadClients }), bucket: new Agent({ connections: o.downloadClients }) }]));
  const variant = (kind: StorageKind) => async (): Promise<DownloadRun> => {
    const server = env.standing.get(kind)!.server;
    const url = server.url + downloadPath(pack);
    const a = agents.get(kind as (typeof kinds)[number])!;
    const pids = server.servingPids();
    const before = { registry: cpu(pids), s3: cpu([env.backends.s3.pid]) };
    let downloads = 0;
    let hashed = 0;
    const started = performance.now();
    const end = started + o.seconds * 1000;
    await Promise.all(
      Array.from({ length: o.downloadClients }, async () => {
        for (let mine = 0; performance.now() < end; mine++) {
          const hash = mine % HASH_EVERY === 0;
          await downloadOnce(kind, url, a, bucketOrigin, pack, hash);
          downloads++;
          if (hash) hashed++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return {
      mbps: (downloads * pack.size) / 1e6 / seconds,
      downloads,
      hashed,
      registryCpuMs: ((cpu(pids) - before.registry) * 1000) / downloads,
      s3rverCpuMs: ((cpu([env.backends.s3.pid]) - before.s3) * 1000) / downloads,
    };
  };
  env.log(`download: ${(pack.size / 2 ** 20).toFixed(1)} MiB pack, ${o.downloadClients} clients, ${o.runs} × ${o.seconds} s per configuration…`);
  let runs: Map<string, DownloadRun[]>;
  try {
    runs = await interleaveRuns(
      kinds.map((k) => [STORAGE_LABELS[k], variant(k)] as const),
      o.runs,
      () => (o.settle ? env.settle() : Promise.resolve()),
    );
  } finally {
    for (const a of agents.values()) await Promise.all([a.registry.close(), a.bucket.close()]);
  }
  const pick = (f: (r: DownloadRun) => number) => new Map([...runs].map(([k, v]) => [k, samples(v.map(f))]));
  const speed = pick((r) => r.mbps);
  const total = [...runs.values()].flat();
  const cpuRows = kinds.map((k) => {
    const list = runs.get(STORAGE_LABELS[k])!;
    return [STORAGE_LABELS[k], samples(list.map((r) => r.registryCpuMs)).median.toFixed(1), k === 'sqlite-fs' ? '—' : samples(list.map((r) => r.s3rverCpuMs)).median.toFixed(1)];
  });
  const markdown = [
    `### Downloads: the whole ${(pack.size / 2 ** 20).toFixed(1)} MiB pack, ${o.downloadClients} clients at once for ${o.seconds} s (GET ${downloadPath(pack)})`,
    '',
    `${quietLine(q)} Clients: undici keep-alive in the benchmark's process, one connection each to the registry (and to s3rver). Every answer checked: status, size, and for redirect the 302's Location (the bucket) and X-Iqp-Sha256; the SHA-256 of each client's first download and one in ${HASH_EVERY} after (${int(total.reduce((a, r) => a + r.hashed, 0))} of ${int(total.reduce((a, r) => a + r.downloads, 0))} downloads) matched the pack. MB/s = 10^6 bytes/s of pack bodies. Median of ${o.runs} interleaved runs after a warm-up.`,
    '',
    configTable(speed, 'MB/s', (v) => v.toFixed(0)),
    '',
    'CPU per download (ms, user + system; median over the runs):',
    '',
    table(['configuration', 'registry', 's3rver'], cpuRows),
    '',
    'What the redirect figure is: s3rver is a Node.js process (koa, a file stream per object) on the same two cores as the registry and the clients, so "redirect" here measures s3rver serving the object after a 302, not a CDN or S3. It does show that in redirect mode the registry only signs a URL (its CPU per download above) and that a client following the 302 gets the intact pack; it does not show how fast a real bucket or CDN serves, which is usually far from the registry and limited by the network, not by the registry.',
  ].join('\n');
  return { name: 'download', markdown, verdicts: [], data: { packBytes: pack.size, clients: o.downloadClients, runs: Object.fromEntries(runs) } };
}
