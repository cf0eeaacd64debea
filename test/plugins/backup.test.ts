/**
 * Backups carry what plugins keep outside the database: server.json and <data>/plugins/<id>/
 * (the auth plugin's signing keys live there), restored readable by the owner only; a backup
 * naming any other path is refused.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBackup, restoreBackup } from '../../server/backup.js';
import { migrateDataDir } from '../../server/datadir.js';
import Database from 'better-sqlite3';
import { iqp, sh, tempDir } from '../e2e/helpers.js';

async function dataDirWithPlugins(): Promise<string> {
  const dataDir = tempDir('iqp-plugin-backup-');
  await migrateDataDir(dataDir);
  writeFileSync(join(dataDir, 'server.json'), '{"plugins":{"notes":{"source":"/opt/notes","config":{"secret":"s3cret-value"}}}}\n', { mode: 0o600 });
  mkdirSync(join(dataDir, 'plugins', 'notes', 'keys'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, 'plugins', 'notes', 'keys', 'signing.key'), 'PRIVATE KEY BYTES\n', { mode: 0o600 });
  return dataDir;
}

describe('backups and plugins', () => {
  it('carry server.json and plugin folders, restored 0600 in 0700 folders; symbolic links are not followed', async () => {
    const dataDir = await dataDirWithPlugins();
    const outside = join(tempDir('iqp-plugin-outside-'), 'elsewhere.txt');
    writeFileSync(outside, 'not the registry’s');
    symlinkSync(outside, join(dataDir, 'plugins', 'notes', 'link.txt'));
    const out = join(tempDir('iqp-plugin-backup-out-'), 'b.backup');
    await createBackup(dataDir, out);
    const restored = join(tempDir('iqp-plugin-restore-'), 'data');
    await restoreBackup(out, restored);
    for (const path of ['server.json', 'plugins/notes/keys/signing.key']) {
      expect(readFileSync(join(restored, path), 'utf8')).toBe(readFileSync(join(dataDir, path), 'utf8'));
      expect(statSync(join(restored, path)).mode & 0o777).toBe(0o600);
    }
    expect(statSync(join(restored, 'plugins', 'notes', 'keys')).mode & 0o777).toBe(0o700);
    expect(() => statSync(join(restored, 'plugins', 'notes', 'link.txt'))).toThrow();
  });

  it('refuses a backup that names a path outside the database, blobs, server.json and plugins/<id>/', async () => {
    const dataDir = await dataDirWithPlugins();
    const work = tempDir('iqp-plugin-backup-hostile-');
    await createBackup(dataDir, join(work, 'good.backup'));
    const dir = join(work, 'unpacked');
    mkdirSync(dir);
    expect(sh('sh', ['-c', `zstd -dcq ../good.backup | tar -xf -`], dir).code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(dir, 'backup.json'), 'utf8')) as { files: { path: string }[] };
    writeFileSync(join(dir, 'lock.json'), '{}');
    chmodSync(join(dir, 'lock.json'), 0o644);
    manifest.files.push({ path: 'lock.json', size_bytes: 2, sha256: '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a' } as never);
    writeFileSync(join(dir, 'backup.json'), JSON.stringify(manifest));
    const hostile = join(work, 'hostile.backup');
    expect(sh('sh', ['-c', `tar --format=ustar -cf - backup.json ${manifest.files.map((f) => f.path).join(' ')} | zstd -q -f -o ${hostile}`], dir).code).toBe(0);
    const target = join(work, 'target');
    await expect(restoreBackup(hostile, target)).rejects.toMatchObject({ code: 'IQP_E_BACKUP_INVALID', message: expect.stringMatching(/unsafe path lock\.json/) });
    expect(() => statSync(target)).toThrow();
    rmSync(dir, { recursive: true });
  });
});

describe('backups of a registry running the built-in plugins', () => {
  it('restore with the auth and sync plugins’ tables and their SQLite-made indexes, and the restored registry has the same accounts', async () => {
    const cwd = tempDir('iqp-plugin-backup-builtin-');
    const data = join(cwd, 'data');
    const run = async (args: string[], env: Record<string, string> = {}) => {
      const r = await iqp([...args, '--data', data, '--json'], { cwd, env });
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
      return r;
    };
    await run(['server', 'migrate']);
    await run(['plugins', 'enable', 'auth']);
    await run(['plugins', 'enable', 'sync']);
    await run(['users', 'create', 'ann@example.org'], { IQP_USER_PASSWORD: 'x7#kq2Lm-river-stone' });
    // UNIQUE and PRIMARY KEY constraints on the plugins' tables give them indexes SQLite names itself.
    const auto = sh('sqlite3', [join(data, 'registry.sqlite'), "SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_auth_%' OR name LIKE 'sqlite_autoindex_sync_%'"], cwd);
    expect(auto.stdout).toMatch(/sqlite_autoindex_auth_/);
    expect(auto.stdout).toMatch(/sqlite_autoindex_sync_/);
    const backup = join(cwd, 'registry.iqpbak');
    await run(['server', 'backup', '--out', backup]);
    const restored = join(cwd, 'restored');
    const r = await iqp(['server', 'restore', backup, '--data', restored, '--json'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    const users = await iqp(['users', 'list', '--data', restored, '--json'], { cwd });
    expect(users.code, users.stderr).toBe(0);
    expect(JSON.stringify(users.json())).toContain('ann@example.org');
  });

  it('still refuses an index SQLite made for a table no recorded plugin owns', async () => {
    const dataDir = await dataDirWithPlugins();
    const db = new Database(join(dataDir, 'registry.sqlite'));
    // A table of a plugin the ledger does not record, with a constraint that makes an automatic index.
    db.exec('CREATE TABLE notes_items (id TEXT NOT NULL UNIQUE)');
    db.close();
    const out = join(tempDir('iqp-plugin-backup-out-'), 'b.backup');
    await createBackup(dataDir, out);
    const restored = join(tempDir('iqp-plugin-restore-'), 'data');
    await expect(restoreBackup(out, restored)).rejects.toMatchObject({ code: 'IQP_E_BACKUP_INVALID', message: expect.stringMatching(/sqlite_autoindex_notes_items_1/) });
  });
});
