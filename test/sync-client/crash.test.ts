/**
 * Crashes: a child process runs an app on FileStore against the real registry and is SIGKILLed at
 * seeded random points while it mutates and syncs, then restarted on the same file. At the end
 * every mutation the child acknowledged is on the server exactly once: its card at version 1, and
 * the shared tally's version equal to the number of distinct fields patched into it (a mutation
 * applied twice would add a version without adding a field).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PASSWORD } from '../auth/support.js';
import { ROOT, tempDir } from '../e2e/helpers.js';
import { seededRng } from '../seed.js';
import { type SyncHarness, syncHarness } from '../sync/support.js';
import { ensureUser, serverRows } from './app.js';

const CHILD = join(ROOT, 'test', 'sync-client', 'crash-child.mjs');
const ROUNDS = 12;
const EMAIL = 'crash@example.org';

let h: SyncHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

interface Run {
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the child; kills it with SIGKILL right after its `killAfter`-th line (never, if undefined). */
function runChild(env: Record<string, string>, killAfter?: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let buffered = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (killAfter !== undefined && lines.length === killAfter) child.kill('SIGKILL');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ lines, code, signal, stderr }));
  });
}

describe('sync client crash safety', () => {
  it('every acknowledged mutation lands exactly once across SIGKILLs at seeded random points', async () => {
    if (!existsSync(join(ROOT, 'dist', 'src', 'sync-client', 'node.js'))) throw new Error('dist/ is missing: run npm run build first (npm test does)');
    const { seed, rng } = seededRng('sync-client crash test');
    h = await syncHarness();
    await ensureUser(h, EMAIL);
    const env = { BASE: h.base, EMAIL, PASSWORD, STORE: join(tempDir('iqp-sync-crash-'), 'client.log'), SEED: String(seed) };
    const acked = new Set<string>();
    const rejected: string[] = [];
    let killsMidSync = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const killAfter = rng.int(1, 40);
      const run = await runChild({ ...env, ROUND: String(round) }, killAfter);
      if (run.signal !== 'SIGKILL') throw new Error(`round ${round}: the child ended by itself (${run.code})\n${run.stderr}`);
      for (const line of run.lines) {
        if (line.startsWith('ack ')) acked.add(line.slice(4));
        if (line.startsWith('rejected ')) rejected.push(line);
      }
      if (run.lines.at(-1) === 'sync') killsMidSync++;
    }
    const final = await runChild({ ...env, ROUND: String(ROUNDS), FINAL: '1' });
    expect(final.stderr).toBe('');
    expect(final.lines.at(-1)).toBe('done');
    expect(rejected).toEqual([]);
    expect(acked.size).toBeGreaterThan(0);

    const server = await serverRows(h, EMAIL, 'check-0001');
    for (const id of acked) expect(server.get(`card/${id}`)?.version, `card ${id} (seed ${seed})`).toBe(1);
    const tally = server.get('tally/t')!;
    const fields = Object.keys(tally.payload);
    for (const id of acked) expect(fields).toContain(id.replace('-', '_'));
    expect(tally.version).toBe(fields.length);
    console.info(`crash test: ${acked.size} acknowledged mutations over ${ROUNDS} kills (${killsMidSync} mid-sync), ${server.size - 1} cards on the server`);
    // Thirteen process starts; generous for a loaded machine, and not a timed assertion.
  }, 240_000);
});
