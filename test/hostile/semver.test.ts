/**
 * Versions the semver library cannot parse (parts beyond Number.MAX_SAFE_INTEGER) are refused
 * everywhere iqp takes one: iqp build, uploads, query parameters and releases; and rows an older
 * registry stored with such versions no longer make listings fail for every app.
 */
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databasePath } from '../../server/config.js';
import { iqp, TEMPLATES } from '../e2e/helpers.js';
import {
  blobFiles,
  buildTemplatePack,
  call,
  expectError,
  newKey,
  packRows,
  startRegistry,
  tempDir,
  type TestKey,
  type TestRegistry,
  tmpFiles,
  upload,
} from '../server/helpers.js';
import { draftWith, publishPack, publishRelease, startReleaseRegistry } from '../server/release-helpers.js';
import { withEditedManifest } from './crafted-packs.js';

const HUGE = '99999999999999999999.0.0';
const UNSAFE = [HUGE, '1.99999999999999999999.0', '1.0.99999999999999999999', `${Number.MAX_SAFE_INTEGER + 1}.0.0`];

let key: TestKey;
let work: string;
let reg: TestRegistry;

beforeAll(async () => {
  key = newKey();
  work = tempDir('iqp-semver-');
  reg = await startRegistry({ keys: [key] });
});
afterAll(async () => {
  await reg?.close();
});

describe('iqp build', () => {
  it.each([
    ['version', HUGE],
    ['min_app_version', '1.0.99999999999999999999'],
  ])('refuses a source whose %s is %s: IQP_E_MANIFEST_SEMVER, exit 1, no pack written', async (field, value) => {
    const dir = join(tempDir(), 'src');
    cpSync(join(TEMPLATES, 'translation'), dir, { recursive: true });
    const authored = JSON.parse(readFileSync(join(dir, 'iqp.json'), 'utf8'));
    writeFileSync(join(dir, 'iqp.json'), JSON.stringify({ ...authored, [field]: value }, null, 2));
    const r = await iqp(['build', dir, '--unsigned', '--out', join(dir, 'out.iqp'), '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(1);
    expect(r.json().error.code).toBe('IQP_E_MANIFEST_SEMVER');
    expect(existsSync(join(dir, 'out.iqp'))).toBe(false);
  });
});

describe('uploads', () => {
  it.each(UNSAFE.flatMap((v) => [['version', v] as const, ['min_app_version', v] as const]))(
    'refuses a signed pack whose %s is %s: 422 IQP_E_MANIFEST_SEMVER, nothing stored',
    async (field, value) => {
      const pack = await buildTemplatePack(work, key, { authored: { package_id: 'semver.upload', version: '1.0.0' } });
      const bad = withEditedManifest(pack, key, (m) => {
        m[field] = value;
      });
      const r = await upload(reg.url, reg.publisher, bad);
      expectError(r, 'IQP_E_MANIFEST_SEMVER', `${field} ${value}`);
      expect(r.status).toBe(422);
      expect(blobFiles(reg.dataDir)).toEqual([]);
      expect(packRows(reg.dataDir)).toEqual([]);
      expect(tmpFiles(reg.dataDir)).toEqual([]);
    },
  );
});

describe('query parameters and releases', () => {
  it.each(UNSAFE)('app_version=%s is 400 IQP_E_INVALID_VERSION on every read path', async (v) => {
    const q = encodeURIComponent(v);
    for (const path of [`/v1/packs/available?app_version=${q}`, `/v1/releases/latest?app_version=${q}`, `/v1/packs/some.pack/${q}/manifest`, `/v1/packs/some.pack/download?version=${q}`]) {
      expectError(await call(reg.url, path), 'IQP_E_INVALID_VERSION', path);
    }
  });

  it('a release whose min_app_version is beyond the safe integers is refused: 400 IQP_E_INVALID_VERSION, nothing created', async () => {
    const r = await call(reg.url, '/v1/admin/releases', { method: 'POST', token: reg.publisher, json: { name: 'r1', channel: 'stable', min_app_version: HUGE, roles: ['text'] } });
    expectError(r, 'IQP_E_INVALID_VERSION');
    expect((await call(reg.url, '/v1/admin/releases?limit=10', { token: reg.publisher })).json().releases).toEqual([]);
  });
});

describe('rows an older registry stored with such versions', () => {
  it('are left out of available and latest (and logged), listings still answer, and an operator can deprecate them', async () => {
    const own = await startReleaseRegistry();
    try {
      const good = await publishPack(own, 'legacy.good', '1.0.0');
      const id = (await publishRelease(own, (await draftWith(own, 'old', { text: good })).id)).id;
      // Stored as a registry that checked versions with a regex alone would have stored them.
      const row = (await own.running.stores.meta.getPack('legacy.good', '1.0.0'))!;
      const audit = { at: row.published_at, actor: 'old-registry', action: 'pack.publish', target: 'x', details: {} };
      await own.running.stores.meta.insertPack({ ...row, version: '2.0.0', min_app_version: HUGE }, audit);
      await own.running.stores.meta.insertPack({ ...row, package_id: 'legacy.bad', version: HUGE }, audit);
      const db = new Database(databasePath(own.dataDir));
      try {
        db.prepare('UPDATE dataset_releases SET min_app_version = ? WHERE id = ?').run(HUGE, id);
      } finally {
        db.close();
      }

      const available = await call(own.url, '/v1/packs/available?app_version=1.0.0');
      expect(available.status, available.body.toString()).toBe(200);
      expect(available.json().packs.map((p: { package_id: string; version: string }) => `${p.package_id}@${p.version}`)).toEqual(['legacy.good@1.0.0']);
      expect((await call(own.url, '/v1/packs/available')).status).toBe(200);
      const versions = await call(own.url, '/v1/packs/legacy.good');
      expect(versions.status).toBe(200);
      expect(versions.json().versions.map((v: { version: string }) => v.version)).toEqual(['2.0.0', '1.0.0']);
      expect((await call(own.url, '/v1/packs/legacy.bad')).status).toBe(200);
      const download = await call(own.url, '/v1/packs/legacy.good/download');
      expect(download.status).toBe(200);
      expect(download.headers.get('etag')).toContain(good.sha256);
      expectError(await call(own.url, '/v1/packs/legacy.bad/download'), 'IQP_E_NOT_FOUND');
      expectError(await call(own.url, '/v1/releases/latest?channel=stable&app_version=1.0.0'), 'IQP_E_NOT_FOUND');
      expectError(await call(own.url, '/v1/releases/latest?channel=stable'), 'IQP_E_NOT_FOUND');
      const warned = own.logs.filter((l) => l['level'] === 'warn').map((l) => String(l['msg']));
      expect(warned.some((m) => m.includes('legacy.good@2.0.0') && m.includes('min_app_version'))).toBe(true);
      expect(warned.some((m) => m.includes(`legacy.bad@${HUGE}`))).toBe(true);
      expect(warned.some((m) => m.includes(`release ${id}`))).toBe(true);
      expect(own.logs.filter((l) => l['level'] === 'error')).toEqual([]);

      // The operator's way out: deprecate by the stored text (docs/runbook.md).
      const dep = await call(own.url, `/v1/admin/packs/legacy.bad/${encodeURIComponent(HUGE)}/deprecate`, { method: 'POST', token: own.publisher, json: { message: 'unparseable version' } });
      expect(dep.status, dep.body.toString()).toBe(200);
      expect(dep.json().status).toBe('deprecated');
      expectError(
        await call(own.url, `/v1/admin/packs/legacy.bad/${encodeURIComponent('1.99999999999999999999.0')}/deprecate`, { method: 'POST', token: own.publisher, json: { message: 'x' } }),
        'IQP_E_INVALID_VERSION',
      );
      const releaseDep = await call(own.url, `/v1/admin/releases/${id}/deprecate`, { method: 'POST', token: own.publisher, json: { message: 'unparseable min_app_version' } });
      expect(releaseDep.status, releaseDep.body.toString()).toBe(200);
    } finally {
      await own.close();
    }
  });
});
