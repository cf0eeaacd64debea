/**
 * The CLI's start-up stays lean: `iqp verify` (and the commands that talk to a registry) must not
 * load the registry's request validation (ajv) or the schema builder (typebox), nor the commands on
 * an embedded registry the PostgreSQL and S3 clients. The client takes
 * its response types from the route declarations with `import type` only, which TypeScript
 * erases; this holds that to the modules Node actually resolves.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { baseEnv, BIN, ROOT, tempDir } from './helpers.js';

/** Runs the real bin/iqp.js with a module hook that lists every module URL it resolves. */
function resolvedModules(args: readonly string[]): { status: number | null; modules: string[] } {
  const dir = tempDir('iqp-startup-');
  const trace = join(dir, 'trace.txt');
  writeFileSync(trace, '');
  writeFileSync(
    join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(trace)}, r.url + '\\n'); return r; }\n`,
  );
  writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(join(dir, 'register.mjs')).href, BIN, ...args], { cwd: dir, env: baseEnv(), encoding: 'utf8' });
  const modules = spawnSync('cat', [trace], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  return { status: r.status, modules };
}

describe('CLI start-up', () => {
  it('iqp verify loads neither typebox nor ajv (nor express)', () => {
    const pack = join(ROOT, 'fixtures', 'good', 'translation.iqp');
    const { status, modules } = resolvedModules(['verify', pack, '--pubkey', join(ROOT, 'fixtures', 'good', 'corpus.pub')]);
    expect(status).toBe(0);
    // The hook saw the verify command and the pack library, so the list means something.
    expect(modules.some((m) => m.endsWith('/dist/src/commands/verify.js'))).toBe(true);
    expect(modules.some((m) => m.endsWith('/dist/src/pack/verify.js'))).toBe(true);
    expect(heavy(modules)).toEqual([]);
  });

  it('iqp pull, whose client reads the declared response types, loads neither typebox nor ajv', () => {
    // No registry listens on port 9: the command fails as a network error after loading the client.
    const { status, modules } = resolvedModules(['pull', 'example.pack', '--registry', 'http://127.0.0.1:9', '--json']);
    expect(status).toBe(3);
    expect(modules.some((m) => m.endsWith('/dist/src/client/pull.js'))).toBe(true);
    expect(modules.some((m) => m.endsWith('/dist/src/client/releases.js'))).toBe(true);
    expect(heavy(modules)).toEqual([]);
  });

  it('commands on the embedded registry load neither the AWS SDK nor node-pg (each a quarter or a twentieth of a second)', () => {
    const data = tempDir('iqp-startup-data-');
    for (const args of [
      ['server', 'migrate', '--data', data, '--json'],
      ['token', 'list', '--data', data, '--json'],
    ]) {
      const { status, modules } = resolvedModules(args);
      expect(status, args.join(' ')).toBe(0);
      // The data directory's stores were opened, so the list means something.
      expect(modules.some((m) => m.endsWith('/dist/server/datadir.js'))).toBe(true);
      expect(modules.filter((m) => /\/node_modules\/(pg|@aws-sdk\/[^/]+)\//.test(m)), args.join(' ')).toEqual([]);
    }
  });
});

function heavy(modules: readonly string[]): string[] {
  return modules.filter((m) => /\/node_modules\/(typebox|ajv|ajv-formats|express)\//.test(m) || m.includes('/dist/src/api/'));
}
