/**
 * Rollback protection that survives a new address, end to end with the real binary: the trust
 * state is keyed by registry id and channel, so a registry restored from an old backup on another
 * port cannot serve an older sequence; a URL-keyed trust state from an older iqp keeps protecting
 * and moves to the id; `iqp release deprecate --rollback-to` lets clients that took the bad release
 * move on to the rolled-back one; and `iqp release attach` refuses a role the release does not
 * require unless --extra-role.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../server/http-client.js';
import { iqp, listTree, type RegistryProcess, startRegistry } from './helpers.js';
import { pullRelease, releaseOf, releaseWorld, type ReleaseWorld } from './release-helpers.js';

let world: ReleaseWorld;
let restored: RegistryProcess | undefined;

const registryIdOf = async (url: string) => (await call(url, '/v1/channels')).json<{ registry_id: string }>().registry_id;
const trustFile = (name: string) => JSON.parse(readFileSync(join(world.work, name), 'utf8'));

beforeAll(async () => {
  world = await releaseWorld('iqp-e2e-release-rollback-', [
    { id: 'rb.text', template: 'translation' },
    { id: 'rb.audio', template: 'recitation' },
  ]);
});
afterAll(async () => {
  expect((await restored?.stop())?.code ?? 0).toBe(0);
  expect((await world?.server.stop())?.code).toBe(0);
});

describe('rollback protection keyed by registry id', () => {
  it('a registry restored from an older backup on another address cannot serve an older sequence', async () => {
    const first = await releaseOf(world, 'addr-1', { text: 'rb.text@1.0.0' }, { channel: 'beta' });
    const backup = await iqp(['server', 'backup', '--data', 'data', '--out', 'old.iqpbak', '--json'], { cwd: world.work, env: { HOME: world.work } });
    expect(backup.code, backup.stderr).toBe(0);
    const second = await releaseOf(world, 'addr-2', { text: 'rb.text@1.0.0' }, { channel: 'beta' });
    expect(second.sequence).toBe(first.sequence! + 1);

    const pulled = await pullRelease(world, 'out-addr', 'trust-addr.json', ['--channel', 'beta']);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.json()).toMatchObject({ release_id: second.id, sequence: second.sequence, registry_id: await registryIdOf(world.server.url) });

    const restore = await iqp(['server', 'restore', 'old.iqpbak', '--data', 'restored', '--json'], { cwd: world.work, env: { HOME: world.work } });
    expect(restore.code, restore.stderr).toBe(0);
    restored = await startRegistry({ cwd: world.work, data: join(world.work, 'restored') });
    expect(restored.url).not.toBe(world.server.url);
    expect(await registryIdOf(restored.url)).toBe(await registryIdOf(world.server.url));
    const served = (await call(restored.url, '/v1/releases/latest?channel=beta')).json<{ sequence: number }>();
    expect(served.sequence).toBe(first.sequence);

    const trustBefore = readFileSync(join(world.work, 'trust-addr.json'));
    const refused = await world.run(
      ['pull', '--release', 'latest', '--channel', 'beta', '--release-key', 'release.pub', '--trust-state', 'trust-addr.json', '--out', 'out-restored', '--json'],
      { IQP_REGISTRY: restored.url },
    );
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.json().error.code).toBe('IQP_E_RELEASE_ROLLBACK');
    expect(readFileSync(join(world.work, 'trust-addr.json'))).toEqual(trustBefore);
    expect(existsSync(join(world.work, 'out-restored')) ? listTree(join(world.work, 'out-restored')) : []).toEqual([]);
  });

  it('a URL-keyed trust state from an older iqp still refuses a rollback, and moves to the registry id once a pull verifies', async () => {
    const r = await releaseOf(world, 'legacy-1', { text: 'rb.text@1.0.0' }, { channel: 'nightly' });
    const legacy = (sequence: number) => ({
      format: 1,
      channels: {
        [`${world.server.url} nightly`]: { sequence, manifest_sha256: '0'.repeat(64), expires_at: '2099-01-01T00:00:00Z', release_id: 99, accepted_at: '2026-01-01T00:00:00.000Z' },
        'https://elsewhere.example nightly': { sequence: 7, manifest_sha256: '1'.repeat(64), expires_at: '2099-01-01T00:00:00Z', release_id: 3, accepted_at: '2026-01-01T00:00:00.000Z' },
      },
    });
    writeFileSync(join(world.work, 'trust-legacy.json'), `${JSON.stringify(legacy(r.sequence! + 5), null, 2)}\n`);
    const refused = await world.run(['pull', '--release', 'latest', '--channel', 'nightly', '--release-key', 'release.pub', '--trust-state', 'trust-legacy.json', '--out', 'out-legacy', '--json']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.json().error.code).toBe('IQP_E_RELEASE_ROLLBACK');
    expect(trustFile('trust-legacy.json')).toEqual(legacy(r.sequence! + 5));

    writeFileSync(join(world.work, 'trust-legacy.json'), `${JSON.stringify(legacy(r.sequence! - 1), null, 2)}\n`);
    const pulled = await world.run(['pull', '--release', 'latest', '--channel', 'nightly', '--release-key', 'release.pub', '--trust-state', 'trust-legacy.json', '--out', 'out-legacy', '--json']);
    expect(pulled.code, pulled.stdout + pulled.stderr).toBe(0);
    expect(pulled.json()).toMatchObject({ sequence: r.sequence, previous_sequence: r.sequence! - 1 });
    const id = await registryIdOf(world.server.url);
    const migrated = trustFile('trust-legacy.json');
    expect(migrated.format).toBe(2);
    expect(migrated.registries[id].nightly).toMatchObject({ sequence: r.sequence, release_id: r.id, accepted_from: world.server.url });
    // The entry it replaced is gone; another URL's entry stays until a pull from there verifies.
    expect(Object.keys(migrated.urls)).toEqual(['https://elsewhere.example nightly']);
  });
});

describe('iqp release deprecate --rollback-to', () => {
  it('withdraws the bad release and re-signs the previous one; a client that took the bad one accepts the rollback', async () => {
    const good = await releaseOf(world, 'rb-good', { text: 'rb.text@1.0.0', audio: 'rb.audio@1.0.0' });
    const bad = await releaseOf(world, 'rb-bad', { text: 'rb.text@1.0.0', audio: 'rb.audio@1.0.0' });
    const took = await pullRelease(world, 'out-rb', 'trust-rb.json');
    expect(took.code, took.stderr).toBe(0);
    expect(took.json()).toMatchObject({ release_id: bad.id, sequence: bad.sequence });

    // Without the key the command is refused before anything changes.
    const noKey = await world.run(['release', 'deprecate', String(bad.id), '--message', 'wrong timings', '--rollback-to', String(good.id), '--json']);
    expect(noKey.code).toBe(2);
    expect(noKey.json().error.code).toBe('IQP_E_KEY_REQUIRED');
    // The hint is about the release key, not a pack build's --unsigned.
    expect(noKey.json().error.hint).toMatch(/release key/);
    expect(noKey.json().error.hint).not.toMatch(/--unsigned/);
    expect((await world.ok(['release', 'show', String(bad.id)])).status).toBe('published');

    const rolled = await world.ok(['release', 'deprecate', String(bad.id), '--message', 'wrong timings', '--rollback-to', String(good.id), '--key', 'release.key']);
    expect(rolled.deprecated).toMatchObject({ id: bad.id, status: 'deprecated' });
    expect(rolled.rolled_back_to).toMatchObject({ id: good.id, status: 'published', sequence: bad.sequence! + 1 });
    const audit = (await call(world.server.url, `/v1/admin/audit?target=release:${bad.id}`, { token: world.token })).json<{ entries: { action: string }[] }>();
    expect(audit.entries.filter((e) => e.action === 'release.deprecate')).toHaveLength(1);

    const after = await pullRelease(world, 'out-rb', 'trust-rb.json');
    expect(after.code, after.stdout + after.stderr).toBe(0);
    expect(after.json()).toMatchObject({ release_id: good.id, sequence: bad.sequence! + 1, previous_sequence: bad.sequence });
  });

  it('refuses a rollback target on another channel, changing nothing', async () => {
    const other = await releaseOf(world, 'rb-beta', { text: 'rb.text@1.0.0' }, { channel: 'beta' });
    const bad = await releaseOf(world, 'rb-bad-2', { text: 'rb.text@1.0.0' });
    const r = await world.run(['release', 'deprecate', String(bad.id), '--message', 'no', '--rollback-to', String(other.id), '--key', 'release.key', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.json().error.code).toBe('IQP_E_USAGE');
    expect((await world.ok(['release', 'show', String(bad.id)])).status).toBe('published');
  });
});

describe('iqp release deprecate is final (docs/runbook.md, "Rolling back")', () => {
  it('a deprecated release cannot be re-signed or rolled back to; a new release of the same packs serves them again', async () => {
    const on = { channel: 'nightly' };
    const previous = await releaseOf(world, 'final-previous', { text: 'rb.text@1.0.0' }, on);
    const bad = await releaseOf(world, 'final-bad', { text: 'rb.text@1.0.0' }, on);
    await world.ok(['release', 'deprecate', String(bad.id), '--message', 'bad', '--rollback-to', String(previous.id), '--key', 'release.key']);
    const resign = await world.run(['release', 'resign', String(bad.id), '--key', 'release.key', '--json']);
    expect([resign.code, resign.json().error.code]).toEqual([3, 'IQP_E_RELEASE_STATE']);
    const next = await releaseOf(world, 'final-next', { text: 'rb.text@1.0.0' }, on);
    const back = await world.run(['release', 'deprecate', String(next.id), '--message', 'back', '--rollback-to', String(bad.id), '--key', 'release.key', '--json']);
    expect([back.code, back.json().error.code]).toEqual([3, 'IQP_E_RELEASE_STATE']);
    expect((await world.ok(['release', 'show', String(next.id)])).status).toBe('published');
    expect((await world.ok(['release', 'show', String(bad.id)])).status).toBe('deprecated');
    const again = await releaseOf(world, 'final-again', { text: 'rb.text@1.0.0' }, on);
    expect((await world.ok(['release', 'latest', '--channel', 'nightly'])).release_id).toBe(again.id);
  });
});

describe('iqp release attach', () => {
  it('refuses a role the release does not require (IQP_E_ROLE_UNKNOWN, exit 2), and takes it with --extra-role', async () => {
    const draft = await world.ok(['release', 'create', 'typo', '--min-app-version', '1.0.0', '--role', 'text,audio']);
    const typo = await world.run(['release', 'attach', String(draft.id), 'txet', 'rb.text@1.0.0', '--json']);
    expect(typo.code, typo.stdout + typo.stderr).toBe(2);
    expect(typo.json().error).toMatchObject({ code: 'IQP_E_ROLE_UNKNOWN', details: { role: 'txet', required_roles: ['audio', 'text'] } });
    expect((await world.ok(['release', 'show', String(draft.id)])).artifacts).toEqual([]);

    const human = await world.run(['release', 'attach', String(draft.id), 'txet', 'rb.text@1.0.0']);
    expect(human.code).toBe(2);
    expect(human.stderr).toContain('--extra-role');

    const extra = await world.ok(['release', 'attach', String(draft.id), 'bonus', 'rb.text@1.0.0', '--extra-role']);
    expect(extra.artifacts.map((a: { role: string }) => a.role)).toEqual(['bonus']);
  });
});
