/**
 * The registry id: created with the data directory, kept across restarts and by backup and
 * restore, served to release managers and apps, signed into every release manifest, and the
 * registry refuses a manifest signed for another registry. Also the refusals around it that a
 * release manager meets: attaching a role the release does not require (a typo), and deprecating
 * a release while re-signing the one to roll back to, in one transaction.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup, restoreBackup } from '../../server/backup.js';
import { serverConfig } from '../../server/config.js';
import { startServer } from '../../server/start.js';
import { SqliteMetadataStore } from '../../server/stores/sqlite/metadata.js';
import { parseReleaseManifest } from '../../src/pack/release-manifest.js';
import { expectError, tempDir, withDatabase } from './helpers.js';
import {
  api,
  attach,
  createRelease,
  publishPack,
  publishRelease,
  type ReleaseRegistry,
  releaseAudit,
  signRelease,
  startReleaseRegistry,
  unchanged,
} from './release-helpers.js';

let reg: ReleaseRegistry;
let registryId: string;

function storedId(dataDir: string): string {
  return withDatabase(dataDir, (db) => db.prepare('SELECT registry_id FROM registry_identity').pluck().get() as string);
}

beforeAll(async () => {
  reg = await startReleaseRegistry();
  await publishPack(reg, 'reg.text', '1.0.0');
  await publishPack(reg, 'reg.audio', '1.0.0');
  registryId = storedId(reg.dataDir);
});
afterAll(async () => {
  await reg?.close();
});

describe('the registry id', () => {
  it('is 128 random bits in hex, made with the data directory, and differs between registries', async () => {
    expect(registryId).toMatch(/^[0-9a-f]{32}$/);
    const other = await startReleaseRegistry();
    try {
      expect(storedId(other.dataDir)).toMatch(/^[0-9a-f]{32}$/);
      expect(storedId(other.dataDir)).not.toBe(registryId);
    } finally {
      await other.close();
    }
  });

  it('never changes: the row cannot be updated, deleted or doubled', async () => {
    const store = new SqliteMetadataStore(join(tempDir('iqp-registry-id-'), 'registry.sqlite'));
    try {
      await store.migrate();
      const db = store.db;
      const id = db.prepare('SELECT registry_id FROM registry_identity').pluck().get();
      expect(() => db.prepare("UPDATE registry_identity SET registry_id = '00000000000000000000000000000000'").run()).toThrow(/registry id never changes/);
      expect(() => db.prepare('DELETE FROM registry_identity').run()).toThrow(/registry id never changes/);
      expect(() => db.prepare("INSERT INTO registry_identity (singleton, registry_id, created_at) VALUES (2, '11111111111111111111111111111111', 'x')").run()).toThrow(/CHECK/);
      expect(() => db.prepare("INSERT INTO registry_identity (singleton, registry_id, created_at) VALUES (1, '11111111111111111111111111111111', 'x')").run()).toThrow(/UNIQUE|PRIMARY/);
      expect(db.prepare('SELECT registry_id FROM registry_identity').pluck().all()).toEqual([id]);
    } finally {
      await store.close();
    }
  });

  it('is served in GET /v1/channels and in the manifest body a release manager signs', async () => {
    const channels = (await api(reg, 'GET', '/v1/channels', undefined, null)).json<{ registry_id: string; channels: string[] }>();
    expect(channels.registry_id).toBe(registryId);
    const release = await createRelease(reg, { name: 'served', roles: ['text'] });
    await attach(reg, release.id, 'text', 'reg.text', '1.0.0');
    const body = (await api(reg, 'GET', `/v1/admin/releases/${release.id}/manifest-body`)).json<{ body: { registry_id: string; format: number } }>().body;
    expect(body.registry_id).toBe(registryId);
    expect(body.format).toBe(2);
  });

  it('is signed into every published manifest, and the public manifest view shows it', async () => {
    const release = await createRelease(reg, { name: 'signed-in', roles: ['text'] });
    await attach(reg, release.id, 'text', 'reg.text', '1.0.0');
    await publishRelease(reg, release.id);
    const view = (await api(reg, 'GET', `/v1/releases/${release.id}/manifest`, undefined, null)).json<{ manifest_json: string; registry_id: string }>();
    const manifest = parseReleaseManifest(Buffer.from(view.manifest_json, 'utf8'));
    expect(manifest.format).toBe(2);
    expect(manifest.registry_id).toBe(registryId);
    expect(view.registry_id).toBe(registryId);
  });

  it('refuses to publish a manifest signed for another registry (422 IQP_E_RELEASE_MANIFEST), changing nothing', async () => {
    const release = await createRelease(reg, { name: 'foreign', roles: ['text'] });
    await attach(reg, release.id, 'text', 'reg.text', '1.0.0');
    const foreign = 'f'.repeat(32);
    const signed = await signRelease(reg, release.id, { body: (b) => ({ ...b, registry_id: foreign }) });
    const reply = await unchanged(reg, () => api(reg, 'POST', `/v1/admin/releases/${release.id}/publish`, { manifest_json: signed.manifest_json, signature: signed.signature }));
    expectError(reply, 'IQP_E_RELEASE_MANIFEST');
    expect(reply.status).toBe(422);
    expect(reply.json<{ error: { message: string } }>().error.message).toContain(foreign);
  });

  it('survives a backup and a restore into another directory', async () => {
    const work = tempDir('iqp-registry-id-backup-');
    const file = join(work, 'registry.iqpbak');
    await createBackup(reg.dataDir, file);
    const restoredDir = join(work, 'restored');
    await restoreBackup(file, restoredDir);
    expect(storedId(restoredDir)).toBe(registryId);
    const restored = await startServer(serverConfig({ dataDir: restoredDir, host: '127.0.0.1', port: 0 }), () => {});
    try {
      const channels = (await fetch(`${restored.url}/v1/channels`).then((r) => r.json())) as { registry_id: string };
      expect(channels.registry_id).toBe(registryId);
    } finally {
      await restored.close();
    }
  });
});

describe('attaching a role the release does not require', () => {
  it('is refused (422 IQP_E_ROLE_UNKNOWN) and changes nothing', async () => {
    const release = await createRelease(reg, { name: 'typo', roles: ['text', 'audio'] });
    const reply = await unchanged(reg, () => api(reg, 'POST', `/v1/admin/releases/${release.id}/artifacts`, { role: 'txet', package_id: 'reg.text', version: '1.0.0' }));
    expectError(reply, 'IQP_E_ROLE_UNKNOWN');
    expect(reply.status).toBe(422);
    expect(reply.json<{ error: { details: { required_roles: string[] } } }>().error.details.required_roles).toEqual(['audio', 'text']);
  });

  it('is accepted with extra_role: true, and validate still warns about it', async () => {
    const release = await createRelease(reg, { name: 'extra', roles: ['text'] });
    const reply = await api(reg, 'POST', `/v1/admin/releases/${release.id}/artifacts`, { role: 'bonus', package_id: 'reg.audio', version: '1.0.0', extra_role: true });
    expect(reply.status, reply.body.toString('utf8')).toBe(201);
    expect(reply.json<{ artifacts: { role: string }[] }>().artifacts.map((a) => a.role)).toEqual(['bonus']);
    const report = (await api(reg, 'POST', `/v1/admin/releases/${release.id}/validate`)).json<{ warnings: { code: string }[] }>();
    expect(report.warnings.map((w) => w.code)).toContain('role_not_required');
  });

  it('extra_role must be a boolean', async () => {
    const release = await createRelease(reg, { name: 'extra-bad', roles: ['text'] });
    const reply = await unchanged(reg, () => api(reg, 'POST', `/v1/admin/releases/${release.id}/artifacts`, { role: 'bonus', package_id: 'reg.audio', version: '1.0.0', extra_role: 'yes' }));
    expectError(reply, 'IQP_E_INVALID_REQUEST');
  });
});

describe('deprecating with a rollback target', () => {
  /** A fresh channel history: good (sequence n), then bad (n+1), both on `channel`. */
  async function goodThenBad(name: string, channel = 'beta') {
    const good = await createRelease(reg, { name: `${name}-good`, roles: ['text'], channel });
    await attach(reg, good.id, 'text', 'reg.text', '1.0.0');
    await publishRelease(reg, good.id);
    const bad = await createRelease(reg, { name: `${name}-bad`, roles: ['text'], channel });
    await attach(reg, bad.id, 'text', 'reg.text', '1.0.0');
    const published = await publishRelease(reg, bad.id);
    return { good: good.id, bad: bad.id, badSequence: published.sequence! };
  }

  it('deprecates the bad release and re-signs the previous one with the next sequence, one audit entry each', async () => {
    const { good, bad, badSequence } = await goodThenBad('rb');
    const auditGood = releaseAudit(reg, good).length;
    const auditBad = releaseAudit(reg, bad).length;
    const signed = await signRelease(reg, good);
    expect(signed.manifest.sequence).toBe(badSequence + 1);
    const reply = await api(reg, 'POST', `/v1/admin/releases/${bad}/deprecate`, {
      message: 'wrong timings',
      rollback_to: { release_id: good, manifest_json: signed.manifest_json, signature: signed.signature },
    });
    expect(reply.status, reply.body.toString('utf8')).toBe(200);
    const body = reply.json<{ deprecated: { id: number; status: string }; rolled_back_to: { id: number; sequence: number; status: string } }>();
    expect(body.deprecated).toMatchObject({ id: bad, status: 'deprecated' });
    expect(body.rolled_back_to).toMatchObject({ id: good, sequence: badSequence + 1, status: 'published' });
    expect(releaseAudit(reg, bad).slice(auditBad).map((e) => e.action)).toEqual(['release.deprecate']);
    expect(releaseAudit(reg, good).slice(auditGood).map((e) => e.action)).toEqual(['release.resign']);
    const latest = (await api(reg, 'GET', '/v1/releases/latest?channel=beta', undefined, null)).json<{ release_id: number; sequence: number }>();
    expect(latest).toMatchObject({ release_id: good, sequence: badSequence + 1 });
  });

  it('changes nothing when the re-signed manifest is refused (wrong sequence, other release, other channel, itself)', async () => {
    const { good, bad } = await goodThenBad('rb-refused', 'nightly');
    const stale = await signRelease(reg, good, { sequence: 1 });
    const cases: [unknown, string][] = [
      [{ release_id: good, manifest_json: stale.manifest_json, signature: stale.signature }, 'IQP_E_RELEASE_SEQUENCE'],
      [{ release_id: bad, ...(await signRelease(reg, good)) }, 'IQP_E_USAGE'],
      [{ release_id: good, manifest_json: 'not json', signature: 'x' }, 'IQP_E_SIG_MALFORMED'],
      [{ release_id: good }, 'IQP_E_INVALID_REQUEST'],
      ['7', 'IQP_E_INVALID_REQUEST'],
      [{ release_id: 0, manifest_json: '{}', signature: 'x' }, 'IQP_E_INVALID_REQUEST'],
    ];
    for (const [rollbackTo, code] of cases) {
      const reply = await unchanged(reg, () => api(reg, 'POST', `/v1/admin/releases/${bad}/deprecate`, { message: 'no', rollback_to: rollbackTo }));
      expectError(reply, code as never, JSON.stringify(rollbackTo).slice(0, 80));
    }
    // A release on another channel is not a rollback target.
    const stable = await createRelease(reg, { name: 'rb-other-channel', roles: ['text'] });
    await attach(reg, stable.id, 'text', 'reg.text', '1.0.0');
    await publishRelease(reg, stable.id);
    const elsewhere = await signRelease(reg, stable.id);
    const reply = await unchanged(reg, () =>
      api(reg, 'POST', `/v1/admin/releases/${bad}/deprecate`, { message: 'no', rollback_to: { release_id: stable.id, manifest_json: elsewhere.manifest_json, signature: elsewhere.signature } }),
    );
    expectError(reply, 'IQP_E_USAGE');
  });
});
