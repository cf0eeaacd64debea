/**
 * `iqp server restore` of hand-made backups: a real backup unpacked with tar and zstd, changed the
 * way a person or a broken script might (a blob left out, a trigger or view added to the database,
 * an index dropped, a schema version that does not match the schema, an empty file list), its
 * backup.json checksums brought up to date so only the inconsistency is wrong, and packed again.
 * Each is refused with IQP_E_BACKUP_INVALID (exit 1), and the target, an existing registry replaced
 * with --force, is left exactly as it was.
 */
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CATALOG } from '../../src/errors.js';
import { sh } from '../e2e/helpers.js';
import { buildTemplatePack, newKey, startRegistry, tempDir, upload } from '../server/helpers.js';
import { iqpIn, snapshot } from './datadir-helpers.js';

interface Manifest {
  schema_version: number;
  packs: number;
  files: { path: string; size_bytes: number; sha256: string }[];
}

let work: string;
let unpacked: string;
let target: string;

beforeAll(async () => {
  work = tempDir('iqp-datadir-restore-');
  const key = newKey();
  const reg = await startRegistry({ keys: [key] });
  try {
    for (const [i, template] of (['translation', 'deck'] as const).entries()) {
      const pack = await buildTemplatePack(work, key, { template, authored: { package_id: `restore.pack${i}`, version: '1.0.0' } });
      expect((await upload(reg.url, reg.publisher, pack.path)).status).toBe(201);
    }
  } finally {
    await reg.close();
  }
  const backup = await iqpIn(reg.dataDir, ['server', 'backup', '--data', reg.dataDir, '--out', join(work, 'good.backup')], work);
  expect(backup.code, backup.stderr).toBe(0);
  unpacked = join(work, 'unpacked');
  expect(sh('sh', ['-c', `mkdir ${unpacked} && zstd -dcq good.backup | tar -xf - -C ${unpacked}`], work).code).toBe(0);

  // The target: an existing, stopped registry with a token of its own.
  target = join(work, 'target');
  expect((await iqpIn(target, ['server', 'migrate', '--data', target], work)).code).toBe(0);
  expect((await iqpIn(target, ['token', 'create', '--role', 'admin', '--data', target], work)).code).toBe(0);
});

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A copy of the good backup changed by `change`, with backup.json's sizes and hashes updated, packed with tar and zstd. */
function handMade(name: string, change: (dir: string, manifest: Manifest) => void): string {
  const dir = join(work, `hand-${name}`);
  cpSync(unpacked, dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'backup.json'), 'utf8')) as Manifest;
  change(dir, manifest);
  for (const f of manifest.files) {
    f.size_bytes = readFileSync(join(dir, f.path)).length;
    f.sha256 = sha256(join(dir, f.path));
  }
  writeFileSync(join(dir, 'backup.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const out = join(work, `${name}.backup`);
  const packed = sh('sh', ['-c', `tar --format=ustar -cf - backup.json ${manifest.files.map((f) => f.path).join(' ')} | zstd -q -f -o ${out}`], dir);
  expect(packed.code, packed.stderr).toBe(0);
  rmSync(dir, { recursive: true });
  return out;
}

function sql(dir: string, statement: string): void {
  const r = sh('sqlite3', [join(dir, 'registry.sqlite'), statement], dir);
  expect(r.code, r.stderr).toBe(0);
}

async function expectRefused(file: string, message: RegExp): Promise<void> {
  const before = snapshot(target);
  const parent = readdirSync(work).sort();
  const r = await iqpIn(target, ['server', 'restore', file, '--data', target, '--force'], work);
  expect(r.code, `${r.stdout}${r.stderr}`).toBe(CATALOG.IQP_E_BACKUP_INVALID.exit);
  expect(r.json().error.code).toBe('IQP_E_BACKUP_INVALID');
  expect(r.json().error.message).toMatch(message);
  expect(snapshot(target), 'the target is untouched').toEqual(before);
  expect(readdirSync(work).sort(), 'no staging directory left').toEqual(parent);
}

describe('restore cross-checks a backup before moving anything into place', () => {
  it('the good backup, unpacked and packed again by hand, restores (so each refusal below is the change’s doing)', async () => {
    const fresh = join(work, 'fresh');
    const r = await iqpIn(fresh, ['server', 'restore', handMade('unchanged', () => {}), '--data', fresh], work);
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.json()).toMatchObject({ packs: 2, files: 3 });
  });

  it('refuses a database that refers to a blob the backup lacks', async () => {
    let missing = '';
    const file = handMade('missing-blob', (dir, m) => {
      const blob = m.files.find((f) => f.path.startsWith('blobs/'))!;
      missing = blob.sha256;
      rmSync(join(dir, blob.path));
      m.files = m.files.filter((f) => f !== blob);
    });
    await expectRefused(file, new RegExp(missing));
  });

  it('refuses a database with an extra trigger', async () => {
    const file = handMade('extra-trigger', (dir) => sql(dir, "CREATE TRIGGER steal AFTER INSERT ON tokens BEGIN UPDATE tokens SET role = 'admin'; END;"));
    await expectRefused(file, /trigger steal/);
  });

  it('refuses a database with an extra view, or with an index dropped', async () => {
    await expectRefused(handMade('extra-view', (dir) => sql(dir, 'CREATE VIEW secrets AS SELECT secret_hash FROM tokens;')), /view secrets/);
    await expectRefused(handMade('dropped-index', (dir) => sql(dir, 'DROP INDEX packs_by_sha256;')), /index packs_by_sha256/);
  });

  it('refuses a schema version that does not match the schema', async () => {
    const file = handMade('wrong-version', (dir, m) => {
      sql(dir, 'DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations);');
      m.schema_version -= 1;
    });
    await expectRefused(file, /schema/);
  });

  it('refuses an empty file list', async () => {
    await expectRefused(handMade('empty-list', (_dir, m) => (m.files = [])), /registry\.sqlite/);
  });
});
