/**
 * vitest globalSetup: the PostgreSQL server the PostgreSQL store suites run against. Given
 * IQP_TEST_DATABASE_URL, that one; otherwise a throwaway cluster (scripts/pg-test-cluster.sh) for
 * this run, stopped at teardown. Without one, CI fails the run (a green CI must mean the adapters
 * were tested) and elsewhere the suites are skipped loudly, by name (test/postgres/harness.ts).
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** postgres:// URL of the test server; null when the PostgreSQL suites are skipped. */
    pgUrl: string | null;
    /** Why the PostgreSQL suites are skipped; null when they run. */
    pgSkip: string | null;
  }
}

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'pg-test-cluster.sh');

function inCi(): boolean {
  const ci = process.env['CI'];
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const given = process.env['IQP_TEST_DATABASE_URL'];
  if (given) {
    project.provide('pgUrl', given);
    project.provide('pgSkip', null);
    return undefined;
  }
  const dir = await mkdtemp(join(tmpdir(), 'iqp-pg-'));
  try {
    const { stdout } = await run('bash', [SCRIPT, 'start', dir]);
    project.provide('pgUrl', stdout.trim());
    project.provide('pgSkip', null);
  } catch (err) {
    await run('bash', [SCRIPT, 'stop', dir]).catch(() => undefined);
    const why = ((err as { stderr?: string }).stderr || (err as Error).message).trim().replace(/\s+/g, ' ');
    if (inCi()) throw new Error(`The PostgreSQL store suites need a PostgreSQL server: set IQP_TEST_DATABASE_URL or install PostgreSQL (${why})`);
    console.error(`\n!!! PostgreSQL store suites SKIPPED: no test PostgreSQL (${why}); set IQP_TEST_DATABASE_URL or install PostgreSQL to run them.\n`);
    project.provide('pgUrl', null);
    project.provide('pgSkip', why);
    return undefined;
  }
  return async () => {
    await run('bash', [SCRIPT, 'stop', dir]);
  };
}
