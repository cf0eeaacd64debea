/**
 * Crash safety of the real server: `node bin/iqp.js server start` is SIGKILLed at random points
 * while dozens of uploads stream in (small packs, and multi-MiB ones sent slowly so that kills land
 * mid-body), then restarted. After every restart the database passes integrity_check, tmp/ has
 * been swept, every row has its blob (a blob without a row is one a kill caught between its commit
 * and its row: recovery keeps it until ORPHAN_GRACE_MS has passed), and every pack the API lists
 * downloads whole with the sha256 it claims. At the end every upload that failed is retried and
 * succeeds.
 *
 * The points are counted in body pieces written, not in milliseconds, so a busy machine moves no
 * kill; which packs go up and where each kill lands come from a seed the test prints
 * (IQP_TEST_SEED replays a run).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seededRng } from '../seed.js';
import {
  blobFiles,
  buildRandomPack,
  buildTemplatePack,
  type BuiltPack,
  call,
  type ChildServer,
  collectPages,
  createTokenCli,
  newRegistryDir,
  integrityCheck,
  newKey,
  packRows,
  registerKey,
  sha256,
  spawnServer,
  streamUpload,
  tempDir,
  tmpFiles,
} from './helpers.js';

const CYCLES = 5;
const UPLOADS_PER_CYCLE = 12;
const PIECE = 128 * 1024;
const { rng } = seededRng('crash test');
/** Every upload of a wave in flight at once (past max_concurrent_uploads they would get 503). */
const START_ARGS = ['--max-concurrent-uploads', String(UPLOADS_PER_CYCLE)];

let dataDir: string;
let packs: BuiltPack[];
let bodies: Map<BuiltPack, Buffer>;
let admin: string;
let publisher: string;
let server: ChildServer | null = null;

const isBig = (p: BuiltPack) => bodies.get(p)!.length > 1024 ** 2;

/**
 * Streams the pack in 128 KiB pieces; `between`, awaited after each piece, holds a large one back
 * (until the small uploads of its wave have been answered) so that they finish while it is still arriving.
 */
const slowUpload = (base: string, body: Buffer, onWritten?: () => void, between?: () => Promise<unknown>) =>
  streamUpload(base, publisher, body, { contentLength: true, chunk: PIECE, ...(between ? { between } : {}), ...(onWritten ? { onWritten } : {}) });

/** Everything that must hold after a (re)start, before any new request. */
async function checkRecovered(s: ChildServer): Promise<void> {
  expect(tmpFiles(dataDir), 'tmp/ is swept at start').toEqual([]);
  expect(integrityCheck(dataDir)).toEqual(['ok']);
  const rows = packRows(dataDir);
  const blobs = blobFiles(dataDir);
  const referenced = new Set(rows.map((r) => r.sha256));
  expect([...referenced].filter((sha) => !blobs.includes(sha)), 'no row without its blob').toEqual([]);
  const orphans = blobs.filter((sha) => !referenced.has(sha));
  expect(orphans.filter((sha) => !packs.some((p) => p.sha256 === sha)), 'a blob without a row is a pack that was uploaded').toEqual([]);

  // Every pack the API lists downloads whole, with the bytes of the pack that was built.
  const listed: string[] = [];
  for (const { package_id } of await collectPages<{ package_id: string }>(s.url, '/v1/packs?limit=3', 'packs')) {
    const versions = (await call(s.url, `/v1/packs/${package_id}`)).json().versions as { version: string; sha256: string; size_bytes: number }[];
    for (const v of versions) {
      const r = await call(s.url, `/v1/packs/${package_id}/download?version=${v.version}`);
      expect(r.status).toBe(200);
      expect(r.body.length, `${package_id}@${v.version}`).toBe(v.size_bytes);
      expect(sha256(r.body), `${package_id}@${v.version}`).toBe(v.sha256);
      const built = packs.find((p) => p.package_id === package_id && p.version === v.version);
      expect(built?.sha256, `${package_id}@${v.version} is a pack that was uploaded`).toBe(v.sha256);
      listed.push(`${package_id}@${v.version}`);
    }
  }
  expect(listed.sort()).toEqual(rows.map((r) => `${r.package_id}@${r.version}`).sort());
}

beforeAll(async () => {
  dataDir = await newRegistryDir('iqp-crash-data-');
  const work = tempDir('iqp-crash-packs-');
  const key = newKey();
  packs = await Promise.all([
    ...Array.from({ length: 14 }, (_, i) =>
      buildTemplatePack(work, key, { template: i % 2 ? 'translation' : 'deck', authored: { package_id: `crash.small.${i % 4}`, version: `1.${i}.0` } }),
    ),
    ...[0, 1, 2, 3].map((i) => buildRandomPack(work, key, { mib: 3, package_id: 'crash.big', version: `2.${i}.0` })),
  ]);
  bodies = new Map(packs.map((p) => [p, readFileSync(p.path)]));
  admin = await createTokenCli(dataDir, 'admin');
  publisher = await createTokenCli(dataDir, 'publisher');
  server = await spawnServer(dataDir, START_ARGS);
  await registerKey(server.url, admin, key);
});

afterAll(async () => {
  if (server && server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
});

it(`survives ${CYCLES} SIGKILLs during ${CYCLES * UPLOADS_PER_CYCLE} uploads, and every failed upload succeeds when retried`, { timeout: 120_000 }, async () => {
  const failed: BuiltPack[] = [];
  let succeeded = 0;
  let sweptTemp = 0;
  for (let cycle = 0; cycle < CYCLES; cycle += 1) {
    const s = server!;
    await checkRecovered(s);
    // A wave of uploads, big ones more often so that some are mid-body when the kill comes.
    const wave = Array.from({ length: UPLOADS_PER_CYCLE }, (_, i) => packs[i % 3 === 0 ? 14 + rng.int(0, 3) : rng.int(0, 13)]!);
    const pieces = wave.reduce((n, p) => n + Math.ceil(bodies.get(p)!.length / PIECE), 0);
    // The kill comes once the wave has written this many pieces and the server has answered this
    // many uploads: early cycles cut nearly every upload, later ones let small packs through and
    // catch big ones mid-body or while they are verified.
    const killAfter = { pieces: Math.max(1, Math.floor((pieces * (cycle + rng.float())) / (CYCLES + 1))), answers: rng.int(cycle, 2 * cycle) };
    let written = 0;
    let answered = 0;
    let reached!: () => void;
    const killPoint = new Promise<void>((resolve) => (reached = resolve));
    const progress = () => {
      if (written >= killAfter.pieces && answered >= killAfter.answers) reached();
    };
    // The big uploads' pieces wait for the wave's small uploads to end (answered or cut off).
    let smallsEnded: Promise<unknown> = Promise.resolve();
    const pending = wave.map((p) =>
      slowUpload(
        s.url,
        bodies.get(p)!,
        () => {
          written += 1;
          progress();
        },
        isBig(p) ? () => smallsEnded : undefined,
      ).then((outcome) => {
        if ('status' in outcome) answered += 1;
        progress();
        return { p, outcome };
      }),
    );
    smallsEnded = Promise.allSettled(pending.filter((_, i) => !isBig(wave[i]!)));
    // If every upload ends before that point, the kill still comes.
    await Promise.race([killPoint, Promise.all(pending)]);
    s.child.kill('SIGKILL');
    expect(await s.exited).toEqual({ code: null, signal: 'SIGKILL' });
    for (const { p, outcome } of await Promise.all(pending)) {
      if ('error' in outcome) failed.push(p);
      else {
        expect([200, 201], outcome.body).toContain(outcome.status);
        succeeded += 1;
      }
    }
    server = await spawnServer(dataDir, START_ARGS);
    sweptTemp += server.info.swept_temp_files;
  }
  await checkRecovered(server!);
  expect(failed.length, 'some uploads were cut off by a kill').toBeGreaterThan(0);
  expect(sweptTemp, 'some kills left a staged upload for the start to sweep').toBeGreaterThan(0);

  for (const p of failed) {
    const r = await slowUpload(server!.url, bodies.get(p)!);
    expect('status' in r && [200, 201].includes(r.status), `retry of ${p.package_id}@${p.version}: ${JSON.stringify(r)}`).toBe(true);
  }
  await checkRecovered(server!);
  const stored = new Set(packRows(dataDir).map((r) => r.sha256));
  for (const p of new Set(failed)) expect(stored.has(p.sha256), `${p.package_id}@${p.version} stored after its retry`).toBe(true);
  console.info(`crash test: ${succeeded} uploads answered, ${failed.length} cut off and retried, ${sweptTemp} staged files swept`);

  // A graceful stop after all this.
  server!.child.kill('SIGTERM');
  expect(await server!.exited).toEqual({ code: 0, signal: null });
  expect(integrityCheck(dataDir)).toEqual(['ok']);
});
