/**
 * `iqp release …` and `iqp pull --release` end to end: the real binary against the real
 * `iqp server start` on 127.0.0.1 with a random port. Human and --json output, validation that
 * exits 1 with its failures, list paging, a pull followed by a re-pull of the same manifest, and
 * a release naming one pack in two roles. The client's refusals are in release.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listTree } from './helpers.js';
import { acceptedOn, pullRelease, releaseOf, releaseWorld, type ReleaseWorld } from './release-helpers.js';

let world: ReleaseWorld;

beforeAll(async () => {
  world = await releaseWorld('iqp-e2e-release-', [
    { id: 'e2e.text', template: 'translation' },
    { id: 'e2e.audio', template: 'recitation' },
  ]);
});
afterAll(async () => {
  expect((await world?.server.stop())?.code).toBe(0);
});

describe('iqp release: the lifecycle', () => {
  let id: number;

  it('profile and profiles', async () => {
    const human = await world.run(['release', 'profile', 'app', '--role', 'text', '--role', 'audio', '--description', 'the app']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toBe('Profile app: audio, text\n');
    expect(await world.ok(['release', 'profiles'])).toEqual({ profiles: [expect.objectContaining({ name: 'app', roles: ['audio', 'text'], description: 'the app' })] });
    expect((await world.run(['release', 'profiles'])).stdout).toMatch(/^app\s+audio, text {2}the app\n$/);
  });

  it('create and attach, in human and --json output', async () => {
    const created = await world.run(['release', 'create', '2026.11', '--profile', 'app', '--min-app-version', '1.0.0', '--notes', 'November']);
    expect(created.code, created.stderr).toBe(0);
    const m = /^Release (\d+): 2026\.11 {2}\(stable, draft\)$/m.exec(created.stdout);
    expect(m, created.stdout).not.toBeNull();
    id = Number(m![1]);
    expect(created.stdout).toContain('for apps ≥ 1.0.0; requires roles audio, text (profile app)');
    expect(created.stdout).toContain(`Next: iqp release attach ${id} <role> <pack>@<version>`);
    const attached = await world.ok(['release', 'attach', String(id), 'text', 'e2e.text@1.0.0']);
    expect(attached).toMatchObject({ id, status: 'draft', artifacts: [{ role: 'text', package_id: 'e2e.text', version: '1.0.0' }] });
    const noVersion = await world.run(['release', 'attach', String(id), 'audio', 'e2e.audio', '--json']);
    expect(noVersion.code).toBe(2);
    expect(noVersion.json().error.code).toBe('IQP_E_USAGE');
  });

  it('validate exits 1 and lists the failures; publish is refused while it fails', async () => {
    const human = await world.run(['release', 'validate', String(id)]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(`Release ${id} fails validation:`);
    expect(human.stdout).toMatch(/✗ role_missing \[audio\]: Required role audio has no pack attached\./);
    const json = await world.run(['release', 'validate', String(id), '--json']);
    expect(json.code).toBe(1);
    expect(json.json()).toMatchObject({ release_id: id, ok: false, failures: [{ code: 'role_missing', role: 'audio' }], warnings: [] });
    const publish = await world.run(['release', 'publish', String(id), '--key', 'release.key', '--json']);
    expect(publish.code).toBe(1);
    expect(publish.json().error).toMatchObject({ code: 'IQP_E_RELEASE_INVALID', details: { failures: [expect.objectContaining({ code: 'role_missing' })] } });
    const human2 = await world.run(['release', 'publish', String(id), '--key', 'release.key']);
    expect(human2.code).toBe(1);
    expect(human2.stderr).toContain('✗ role_missing [audio]');
    expect(human2.stderr).toContain('IQP_E_RELEASE_INVALID');
    expect((await world.ok(['release', 'show', String(id)])).status).toBe('draft');
  });

  it('validates, publishes with a manifest signed here, and shows it', async () => {
    await world.ok(['release', 'attach', String(id), 'audio', 'e2e.audio@1.0.0']);
    const valid = await world.run(['release', 'validate', String(id)]);
    expect([valid.code, valid.stdout]).toEqual([0, `Release ${id} is valid.\n`]);
    const published = await world.run(['release', 'publish', String(id), '--key', 'release.key', '--expires-in', '7']);
    expect(published.code, published.stderr).toBe(0);
    expect(published.stdout).toMatch(new RegExp(`^Published Release ${id}: 2026\\.11 {2}\\(stable, published, sequence 1\\)`));
    const shown = await world.ok(['release', 'show', String(id)]);
    expect(shown).toMatchObject({ status: 'published', sequence: 1, notes: 'November' });
    const days = (Date.parse(shown.expires_at) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThanOrEqual(7);
    const human = await world.run(['release', 'show', String(id)]);
    expect(human.stdout).toContain('  audio          e2e.audio@1.0.0');
    expect(human.stdout).toMatch(/published .*; manifest signed by [0-9A-F]{16}, expires /);
    const twice = await world.run(['release', 'publish', String(id), '--key', 'release.key', '--json']);
    expect([twice.code, twice.json().error.code]).toEqual([3, 'IQP_E_RELEASE_STATE']);
  });

  it('latest, in human and --json output; none for an older app', async () => {
    const json = await world.ok(['release', 'latest', '--app-version', '1.0.0']);
    expect(json).toMatchObject({ release_id: id, sequence: 1, channel: 'stable', status: 'published' });
    expect(json).not.toHaveProperty('manifest_json');
    expect(json).not.toHaveProperty('signature');
    const human = await world.run(['release', 'latest', '--app-version', '1.0.0']);
    expect(human.stdout).toMatch(new RegExp(`^Release ${id}: 2026\\.11 {2}\\(stable, sequence 1, published\\)\\n {2}for apps ≥ 1\\.0\\.0; signed by [0-9A-F]{16}; expires `));
    expect(human.stdout).toMatch(/ {2}text {11}e2e\.text@1\.0\.0 {2}\d+ bytes {2}sha256 [0-9a-f]{16}…/);
    const none = await world.run(['release', 'latest', '--app-version', '0.9.0', '--json']);
    expect([none.code, none.json().error.code]).toEqual([3, 'IQP_E_NOT_FOUND']);
    const badVersion = await world.run(['release', 'latest', '--app-version', 'one', '--json']);
    expect([badVersion.code, badVersion.json().error.code]).toEqual([2, 'IQP_E_INVALID_VERSION']);
    const badChannel = await world.run(['release', 'latest', '--channel', 'nope', '--json']);
    expect([badChannel.code, badChannel.json().error.code]).toEqual([2, 'IQP_E_CHANNEL_UNKNOWN']);
  });

  it('pulls the release, then pulls the same manifest again: the packs are already present', async () => {
    const first = await pullRelease(world, 'pulled', 'trust.json');
    expect(first.code, first.stderr).toBe(0);
    const r = first.json();
    expect(r).toMatchObject({ ok: true, release_id: id, sequence: 1, previous_sequence: null });
    expect(r.packs.map((p: { package_id: string; downloaded: boolean }) => [p.package_id, p.downloaded])).toEqual([['e2e.audio', true], ['e2e.text', true]]);
    expect(listTree(join(world.work, 'pulled'))).toEqual(['e2e.audio-1.0.0.iqp', 'e2e.text-1.0.0.iqp']);
    const trust = readFileSync(join(world.work, 'trust.json'), 'utf8');
    expect(acceptedOn(trust, 'stable')).toMatchObject({ sequence: 1, release_id: id });

    const again = await pullRelease(world, 'pulled', 'trust.json', ['--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ release_id: id, sequence: 1, previous_sequence: 1 });
    expect(again.json().packs.every((p: { downloaded: boolean }) => !p.downloaded)).toBe(true);
    const human = await world.run(['pull', '--release', 'latest', '--release-key', 'release.pub', '--trust-state', 'trust.json', '--out', 'pulled']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(`Pulled release ${id} (2026.11) from stable: sequence 1 (previously 1)`);
    expect(human.stdout).toContain('e2e.text@1.0.0 → pulled/e2e.text-1.0.0.iqp  (already present)');
    expect(listTree(join(world.work, 'pulled'))).toEqual(['e2e.audio-1.0.0.iqp', 'e2e.text-1.0.0.iqp']);
    const stored = acceptedOn(readFileSync(join(world.work, 'trust.json'), 'utf8'), 'stable');
    expect(stored.sequence).toBe(1);
    expect(stored.manifest_sha256).toBe(acceptedOn(trust, 'stable').manifest_sha256);
  });

  it('deprecates a published release but not a draft', async () => {
    const draft = await releaseOf(world, 'draft-only', { text: 'e2e.text@1.0.0' }, { publish: false });
    const refused = await world.run(['release', 'deprecate', String(draft.id), '--message', 'no', '--json']);
    expect([refused.code, refused.json().error.code]).toEqual([3, 'IQP_E_RELEASE_STATE']);
    const noMessage = await world.run(['release', 'deprecate', String(id), '--json']);
    expect([noMessage.code, noMessage.json().error.code]).toEqual([2, 'IQP_E_MISSING_OPTION']);
    const human = await world.run(['release', 'deprecate', String(id), '--message', 'superseded']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/DEPRECATED .*: superseded/);
    expect(human.stdout).toContain('clients only move forward');
    // The way back now is to re-sign the previous release: this one, deprecated, cannot be deprecated again with --rollback-to.
    expect(human.stdout).toContain('iqp release resign <previous id> --key FILE');
    expect(human.stdout).not.toMatch(/iqp release deprecate \S+ --rollback-to/);
    const again = await world.run(['release', 'deprecate', String(id), '--message', 'again', '--rollback-to', '1', '--key', 'release.key', '--json']);
    expect([again.code, again.json().error.code]).toEqual([3, 'IQP_E_RELEASE_STATE']);
  });
});

describe('iqp release list: paging', () => {
  it('pages with --limit and --cursor, follows every page with --all, in human and --json output', async () => {
    for (let i = 1; i <= 4; i += 1) await releaseOf(world, `page-${i}`, { text: 'e2e.text@1.0.0' }, { publish: false, channel: 'beta' });
    const all = await world.ok(['release', 'list', '--channel', 'beta', '--all', '--limit', '3']);
    expect(all.releases.map((r: { name: string }) => r.name)).toEqual(['page-4', 'page-3', 'page-2', 'page-1']);
    expect(all.paging).toMatchObject({ has_more: false, next_cursor: null });

    const first = await world.ok(['release', 'list', '--channel', 'beta', '--limit', '3']);
    expect(first.releases.map((r: { name: string }) => r.name)).toEqual(['page-4', 'page-3', 'page-2']);
    expect(first.paging).toEqual({ limit: 3, has_more: true, next_cursor: expect.any(String) });
    const second = await world.ok(['release', 'list', '--channel', 'beta', '--limit', '3', '--cursor', first.paging.next_cursor]);
    expect(second.releases.map((r: { name: string }) => r.name)).toEqual(['page-1']);
    expect(second.paging.has_more).toBe(false);

    const human = await world.run(['release', 'list', '--channel', 'beta', '--limit', '3']);
    expect(human.code).toBe(0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^\s+\d+ {2}beta {5}draft {6}page-4 +apps ≥ 1\.0\.0 {2}1 pack\(s\)$/);
    expect(lines[3]).toBe(`More: iqp release list --cursor ${first.paging.next_cursor}`);
    expect((await world.run(['release', 'list', '--channel', 'beta', '--all', '--limit', '3'])).stdout).not.toContain('More:');

    for (const bad of [['--limit', '0'], ['--limit', '501'], ['--limit', 'x']]) {
      const r = await world.run(['release', 'list', ...bad, '--json']);
      expect([r.code, r.json().error.code], bad.join(' ')).toEqual([2, 'IQP_E_USAGE']);
    }
    const badCursor = await world.run(['release', 'list', '--cursor', 'garbage', '--json']);
    expect([badCursor.code, badCursor.json().error.code]).toEqual([2, 'IQP_E_USAGE']);
  });
});

describe('iqp release publish with a key that is not a release key', () => {
  it('the pack key: says it is registered for packs and points to the release key; nothing is published', async () => {
    const draft = await releaseOf(world, 'wrong-key', { text: 'e2e.text@1.0.0' }, { publish: false, channel: 'nightly' });
    const json = await world.run(['release', 'publish', String(draft.id), '--key', 'publisher.key', '--json']);
    expect(json.code, json.stdout).toBe(1);
    const { error } = json.json();
    expect(error.code).toBe('IQP_E_SIG_UNTRUSTED_KEY');
    expect(error.message).toMatch(/registered for packs, not releases/);
    expect(error.hint).toMatch(/release key/);
    expect(error.hint).toMatch(/IQP_RELEASE_KEY/);
    expect(error.hint).not.toMatch(/--pubkey|publisher/);
    const human = await world.run(['release', 'publish', String(draft.id), '--key', 'publisher.key']);
    expect(human.stderr).toContain('hint: ');
    expect(human.stderr).not.toContain('--pubkey');
    // A key the registry does not know at all is named as such, with how an admin adds a release key.
    await world.ok(['keygen', '--out', 'stranger', '--no-passphrase']);
    const stranger = await world.run(['release', 'publish', String(draft.id), '--key', 'stranger.key', '--json']);
    expect(stranger.json().error.message).toMatch(/not a registered release key/);
    expect(stranger.json().error.hint).toMatch(/iqp keys add .*--purpose release/);
    expect((await world.ok(['release', 'show', String(draft.id)])).status).toBe('draft');
  });
});

describe('iqp pull --release: one pack in two roles', () => {
  it('fetches it once, moves it into place once, and saves the trust state', async () => {
    const r = await releaseOf(world, 'two-roles', { text: 'e2e.text@1.0.0', reference: 'e2e.text@1.0.0' }, { channel: 'nightly' });
    const pulled = await pullRelease(world, 'two-roles', 'trust-nightly.json', ['--channel', 'nightly']);
    expect(pulled.code, `${pulled.stdout}${pulled.stderr}`).toBe(0);
    const path = join(world.work, 'two-roles', 'e2e.text-1.0.0.iqp');
    expect(pulled.json().packs.map((p: { role: string; path: string; downloaded: boolean }) => [p.role, p.path, p.downloaded])).toEqual([
      ['reference', path, true],
      ['text', path, true],
    ]);
    expect(listTree(join(world.work, 'two-roles'))).toEqual(['e2e.text-1.0.0.iqp']);
    expect(acceptedOn(readFileSync(join(world.work, 'trust-nightly.json'), 'utf8'), 'nightly')).toMatchObject({ release_id: r.id, sequence: 1 });
  });
});
