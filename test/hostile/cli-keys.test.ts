/**
 * `iqp keys remove` and key rotation (docs/runbook.md, "Rotating keys"): a key is in use while it
 * signs the newest version some app is offered of some pack; once each of its packs is deprecated
 * or superseded (a newer version every app that could use it can use instead), it can go. A
 * refusal names the packs and removes nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { iqp, tempDir } from '../e2e/helpers.js';
import { attach, createRelease, publishRelease, startReleaseRegistry } from '../server/release-helpers.js';
import { buildTemplatePack, call, newKey, registerKey, startRegistry, type TestKey, type TestRegistry, upload } from '../server/helpers.js';

let reg: TestRegistry | null = null;
afterEach(async () => {
  await reg?.close();
  reg = null;
});

const ID = 'quran.translation.en-rotation';

async function publish(r: TestRegistry, key: TestKey, version: string, min_app_version = '1.0.0'): Promise<void> {
  const pack = await buildTemplatePack(tempDir(), key, { authored: { package_id: ID, version, min_app_version } });
  const answer = await upload(r.url, r.publisher, pack.path);
  expect(answer.status, answer.body.toString()).toBe(201);
}

async function keyIds(r: TestRegistry): Promise<string[]> {
  return (await call(r.url, '/v1/keys')).json<{ keys: { key_id: string }[] }>().keys.map((k) => k.key_id).sort();
}

function remove(r: TestRegistry, keyId: string) {
  return iqp(['keys', 'remove', keyId, '--json'], { cwd: tempDir(), env: { IQP_REGISTRY: r.url, IQP_TOKEN: r.admin } });
}

/** A registry with the old key and the new one, and `versions` published: [version, signed by old?, min_app_version]. */
async function rotation(versions: readonly [string, 'old' | 'new', string?][]): Promise<{ r: TestRegistry; old: TestKey; fresh: TestKey }> {
  const old = newKey();
  const fresh = newKey();
  const r = await startRegistry({ keys: [old] });
  reg = r;
  await registerKey(r.url, r.admin, fresh);
  for (const [version, signer, minApp] of versions) await publish(r, signer === 'old' ? old : fresh, version, minApp);
  return { r, old, fresh };
}

describe('iqp keys remove during a key rotation', () => {
  it('removes a key whose packs were all superseded by versions signed with the new key', async () => {
    const { r, old, fresh } = await rotation([
      ['1.0.0', 'old'],
      ['1.1.0', 'old'],
      ['1.2.0', 'new'],
    ]);
    const out = await remove(r, old.keyId);
    expect(out.code, out.stdout).toBe(0);
    expect(out.json()).toEqual({ removed: old.keyId });
    expect(await keyIds(r)).toEqual([fresh.keyId]);
  });

  it('refuses while the key signs the newest version, naming it, and removes nothing', async () => {
    const { r, old, fresh } = await rotation([
      ['1.0.0', 'new'],
      ['1.1.0', 'old'],
    ]);
    const out = await remove(r, old.keyId);
    expect(out.code).toBe(3);
    expect(out.json().error).toMatchObject({ code: 'IQP_E_KEY_IN_USE', details: { packs: [`${ID}@1.1.0`] } });
    expect(await keyIds(r)).toEqual([old.keyId, fresh.keyId].sort());
  });

  it('refuses while older apps are still offered its version (the newer one needs a newer app)', async () => {
    const { r, old } = await rotation([
      ['1.0.0', 'old', '1.0.0'],
      ['2.0.0', 'new', '2.0.0'],
    ]);
    const out = await remove(r, old.keyId);
    expect(out.json().error).toMatchObject({ code: 'IQP_E_KEY_IN_USE', details: { packs: [`${ID}@1.0.0`] } });
    expect((await keyIds(r)).includes(old.keyId)).toBe(true);
  });

  it('refuses while the only newer version is a pre-release (apps are not offered it by default)', async () => {
    const { r, old } = await rotation([
      ['1.0.0', 'old'],
      ['1.1.0-beta.1', 'new'],
    ]);
    const out = await remove(r, old.keyId);
    expect(out.json().error).toMatchObject({ code: 'IQP_E_KEY_IN_USE', details: { packs: [`${ID}@1.0.0`] } });
  });

  it('removes it once the version it signs is deprecated instead', async () => {
    const { r, old, fresh } = await rotation([['1.0.0', 'old']]);
    expect((await remove(r, old.keyId)).json().error.code).toBe('IQP_E_KEY_IN_USE');
    const dep = await iqp(['deprecate', `${ID}@1.0.0`, '--message', 'key rotated', '--json'], { cwd: tempDir(), env: { IQP_REGISTRY: r.url, IQP_TOKEN: r.publisher } });
    expect(dep.code, dep.stdout).toBe(0);
    expect((await remove(r, old.keyId)).code).toBe(0);
    expect(await keyIds(r)).toEqual([fresh.keyId]);
  });

  it('refuses while a published release still ships a pack it signs, even a superseded one, and removes nothing', async () => {
    // Release pulls check every pack's signature against GET /v1/keys: removing the key would
    // break every app on that release.
    const r = await startReleaseRegistry();
    reg = r;
    const fresh = newKey();
    await registerKey(r.url, r.admin, fresh);
    await publish(r, r.packKey, '1.0.0');
    const release = await createRelease(r, { name: 'r1', roles: ['translation'] });
    await attach(r, release.id, 'translation', ID, '1.0.0');
    await publishRelease(r, release.id);
    await publish(r, fresh, '1.1.0'); // supersedes 1.0.0 for every app
    const before = await keyIds(r);
    const out = await remove(r, r.packKey.keyId);
    expect(out.code, out.stdout).toBe(3);
    expect(out.json().error).toMatchObject({ code: 'IQP_E_KEY_IN_USE', details: { releases: [release.id], packs: [`${ID}@1.0.0`] } });
    expect(out.json().error.hint).toMatch(/release/);
    expect(await keyIds(r)).toEqual(before);
  });
});
