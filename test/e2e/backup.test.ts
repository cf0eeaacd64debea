/**
 * Backup and restore rehearsal, end to end: `iqp server backup` while a registry with packs and a
 * published release serves, `sha256sum -c` on the sidecar, `iqp server restore` into a fresh
 * directory, and a second real server on the restored data serving the same bytes and a release
 * manifest that still verifies for a client with a fresh trust state. Then the refusals: a
 * non-empty target, a corrupted and a truncated backup (IQP_E_BACKUP_INVALID), each changing nothing.
 * And the runbook's backup commands, run as written.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../src/pack/minisign.js';
import { verifyReleaseManifest } from '../../src/pack/release-manifest.js';
import { call } from '../server/http-client.js';
import { BIN, iqp, listTree, type RegistryProcess, ROOT, sh, startRegistry } from './helpers.js';
import { pullRelease, releaseOf, releaseWorld, type ReleaseWorld } from './release-helpers.js';

const PACKS = ['e2e.text', 'e2e.audio'];
let world: ReleaseWorld;
let restored: RegistryProcess | undefined;

/** `iqp server …` in the work dir (no registry needed), returning the run. */
const server = (args: string[]) => iqp(['server', ...args], { cwd: world.work, env: { HOME: world.work } });

beforeAll(async () => {
  world = await releaseWorld('iqp-e2e-backup-', [
    { id: 'e2e.text', template: 'translation' },
    { id: 'e2e.audio', template: 'recitation' },
  ]);
  await releaseOf(world, '2026.11', { text: 'e2e.text@1.0.0', audio: 'e2e.audio@1.0.0' });
});
afterAll(async () => {
  expect((await restored?.stop())?.code ?? 0).toBe(0);
  expect((await world?.server.stop())?.code).toBe(0);
});

describe('iqp server backup and restore', () => {
  it('backs up while serving, restores into a fresh dir, and a server on it serves the same packs and a verifying release', async () => {
    const backup = await server(['backup', '--out', 'registry.backup', '--data', 'data', '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.json()).toMatchObject({ packs: 2, files: 3, path: join(world.work, 'registry.backup') });
    const check = sh('sha256sum', ['-c', 'registry.backup.sha256'], world.work);
    expect([check.code, check.stdout]).toEqual([0, 'registry.backup: OK\n']);

    const restore = await server(['restore', 'registry.backup', '--data', 'restored', '--json']);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json()).toMatchObject({ packs: 2, files: 3, migrated: [] });
    restored = await startRegistry({ cwd: world.work, data: join(world.work, 'restored') });

    const available = (await call(restored.url, '/v1/packs/available')).json<{ packs: { package_id: string; sha256: string }[] }>();
    const original = (await call(world.server.url, '/v1/packs/available')).json<{ packs: { package_id: string; sha256: string }[] }>();
    expect(available.packs.map((p) => [p.package_id, p.sha256]).sort()).toEqual(original.packs.map((p) => [p.package_id, p.sha256]).sort());
    for (const id of PACKS) {
      const download = await call(restored.url, `/v1/packs/${id}/download?version=1.0.0`);
      expect(download.status).toBe(200);
      expect(download.body.equals(readFileSync(join(world.work, `${id}-1.0.0.iqp`))), `${id} byte-identical`).toBe(true);
    }

    const latest = (await call(restored.url, '/v1/releases/latest?app_version=1.0.0')).json();
    const before = (await call(world.server.url, '/v1/releases/latest?app_version=1.0.0')).json();
    expect([latest.manifest_json, latest.signature]).toEqual([before.manifest_json, before.signature]);
    const releaseKey = parsePublicKey(readFileSync(join(world.work, 'release.pub'), 'utf8'));
    expect(verifyReleaseManifest(latest.manifest_json, latest.signature, [releaseKey]).manifest).toMatchObject({ name: '2026.11', sequence: 1 });

    const pulled = await pullRelease(world, 'from-restored', 'fresh-trust.json', ['--registry', restored.url]);
    expect(pulled.code, `${pulled.stdout}${pulled.stderr}`).toBe(0);
    expect(pulled.json()).toMatchObject({ ok: true, sequence: 1, previous_sequence: null });
    for (const id of PACKS) {
      expect(readFileSync(join(world.work, 'from-restored', `${id}-1.0.0.iqp`)).equals(readFileSync(join(world.work, `${id}-1.0.0.iqp`)))).toBe(true);
    }
    const token = await call(restored.url, '/v1/admin/releases', { token: world.token });
    expect(token.status, 'tokens are restored too').toBe(200);
  });

  it('refuses a non-empty target without --force (IQP_E_TARGET_NOT_EMPTY), changing nothing; --force replaces it', async () => {
    const target = join(world.work, 'occupied');
    mkdirSync(target);
    writeFileSync(join(target, 'keep.txt'), 'precious');
    const r = await server(['restore', 'registry.backup', '--data', 'occupied', '--json']);
    expect([r.code, r.json().error.code]).toEqual([2, 'IQP_E_TARGET_NOT_EMPTY']);
    expect(listTree(target)).toEqual(['keep.txt']);
    expect(readFileSync(join(target, 'keep.txt'), 'utf8')).toBe('precious');
    expect(readdirSync(world.work).filter((n) => n.includes('iqp-tmp') || n.includes('.replaced-'))).toEqual([]);

    const forced = await server(['restore', 'registry.backup', '--data', 'occupied', '--force', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(listTree(target)).not.toContain('keep.txt');
    expect(listTree(target)).toContain('registry.sqlite');
  });

  it('a backup into a folder that does not exist says which folder to create, and leaves nothing', async () => {
    const r = await server(['backup', '--data', 'data', '--out', 'missing/registry.iqpbak', '--json']);
    expect([r.code, r.json().error.code]).toEqual([2, 'IQP_E_FILE_NOT_FOUND']);
    expect(r.json().error.message).toMatch(/the folder .*missing does not exist/);
    expect(r.json().error.hint).toMatch(/mkdir -p .*missing/);
    expect(existsSync(join(world.work, 'missing'))).toBe(false);
  });

  it('the runbook’s backup commands work as written, `sha256sum -c` included, from any working directory', async () => {
    const runbook = readFileSync(join(ROOT, 'docs', 'runbook.md'), 'utf8');
    const section = runbook.slice(runbook.indexOf('## Backup and restore'));
    const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
    expect(block).toMatch(/sha256sum -c/);
    const backups = join(world.work, 'backups');
    mkdirSync(backups);
    const script = block
      .replaceAll('/srv/iqp', join(world.work, 'data'))
      .replaceAll('/backups', backups)
      .replace(/^iqp /gm, `"${process.execPath}" "${BIN}" `);
    const elsewhere = join(world.work, 'elsewhere');
    mkdirSync(elsewhere);
    const r = sh('sh', ['-ec', script], elsewhere);
    expect(r.code, `${script}\n${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/\.iqpbak: OK\n$/);
  });

  describe('a damaged backup is refused with a clear error, and the target is not created', () => {
    const bytes = () => readFileSync(join(world.work, 'registry.backup'));

    async function refusedRestore(name: string, data: Buffer, sidecar: boolean): Promise<string> {
      writeFileSync(join(world.work, name), data);
      if (sidecar) copyFileSync(join(world.work, 'registry.backup.sha256'), join(world.work, `${name}.sha256`));
      const before = readdirSync(world.work).sort();
      const r = await server(['restore', name, '--data', `restored-${name}`, '--json']);
      expect([r.code, r.json().error.code], r.stdout).toEqual([1, 'IQP_E_BACKUP_INVALID']);
      expect(existsSync(join(world.work, `restored-${name}`)), 'target not created').toBe(false);
      expect(readdirSync(world.work).sort(), 'no staging directory left').toEqual(before);
      return r.json().error.message as string;
    }

    it('one flipped byte: caught by the .sha256 sidecar, and without it by the archive’s own checksums', async () => {
      const flipped = bytes();
      flipped[flipped.length >> 1]! ^= 0x01;
      expect(await refusedRestore('flipped.backup', flipped, true)).toMatch(/damaged .* sha256 .* says/);
      expect(await refusedRestore('flipped-alone.backup', flipped, false)).toMatch(/The backup is damaged/);
    });

    it('a truncated file, with and without the sidecar', async () => {
      const whole = bytes();
      const cut = whole.subarray(0, whole.length >> 1);
      expect(await refusedRestore('truncated.backup', cut, true)).toMatch(/damaged/);
      expect(await refusedRestore('truncated-alone.backup', cut, false)).toMatch(/The backup is damaged/);
      expect(await refusedRestore('empty.backup', Buffer.alloc(0), false)).toMatch(/The backup is damaged/);
    });
  });
});
