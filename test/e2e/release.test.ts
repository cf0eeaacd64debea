/**
 * `iqp pull --release latest` refusing what a hostile or broken registry serves, end to end: a
 * manifest signed by a release key apps do not pin, a rollback, an expired manifest, a pack
 * swapped under a release, a manifest edited in the registry's database. Every refusal exits as
 * the catalog says, leaves the trust-state file byte for byte as it was and nothing new in --out.
 *
 * The client has no clock flag, so the expired case is made honestly on the registry side: a
 * manifest signed with the format library (as `iqp release publish` signs) whose expires_at is a
 * few seconds ahead, published over HTTP while still valid, then waited out.
 */
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rfc3339 } from '../../src/client/releases.js';
import { parseSecretKey, sign } from '../../src/pack/minisign.js';
import { type ReleaseManifestBody, signReleaseManifest } from '../../src/pack/release-manifest.js';
import { call } from '../server/http-client.js';
import { expectRefusedPull, pullRelease, releaseOf, releaseWorld, type ReleaseWorld } from './release-helpers.js';

const BOTH = { text: 'e2e.text@1.0.0', audio: 'e2e.audio@1.0.0' };
let world: ReleaseWorld;

async function pulled(out: string): Promise<{ release_id: number; sequence: number }> {
  const r = await pullRelease(world, out, 'trust.json');
  expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
  return r.json();
}

/** Edits registry.sqlite while the server is stopped, then starts it again at the same URL. */
function editDatabase(edit: (db: Database.Database) => void): Promise<void> {
  return world.restart(() => {
    const db = new Database(join(world.data, 'registry.sqlite'));
    try {
      edit(db);
    } finally {
      db.close();
    }
  });
}

beforeAll(async () => {
  world = await releaseWorld('iqp-e2e-refusals-', [
    { id: 'e2e.text', template: 'translation' },
    { id: 'e2e.audio', template: 'recitation' },
  ]);
  await releaseOf(world, 'r1', BOTH);
  expect(await pulled('pulled')).toMatchObject({ sequence: 1 });
});
afterAll(async () => {
  expect((await world?.server.stop())?.code).toBe(0);
});

describe('iqp pull --release refuses', () => {
  let r1: number;

  it('a manifest signed by a release key the registry accepts but the app does not pin (IQP_E_SIG_UNTRUSTED_KEY)', async () => {
    r1 = (await world.ok(['release', 'latest'])).release_id;
    const rogue = await releaseOf(world, 'r2-rogue', BOTH, { key: 'rogue.key' });
    expect(rogue.sequence).toBe(2);
    await expectRefusedPull(world, 'pulled', 'trust.json', 'IQP_E_SIG_UNTRUSTED_KEY');
    await expectRefusedPull(world, 'fresh-untrusted', 'trust.json', 'IQP_E_SIG_UNTRUSTED_KEY');
    await world.ok(['release', 'deprecate', String(rogue.id), '--message', 'signed with the wrong key']);
  });

  it('a rollback: the newer release deprecated after it was pulled (IQP_E_RELEASE_ROLLBACK), until the older one is re-signed', async () => {
    const r3 = await releaseOf(world, 'r3', { text: 'e2e.text@1.0.0' });
    expect(await pulled('pulled')).toMatchObject({ release_id: r3.id, sequence: 3 });
    await world.ok(['release', 'deprecate', String(r3.id), '--message', 'bad text']);
    expect((await world.ok(['release', 'latest'])).release_id).toBe(r1);
    const refused = await expectRefusedPull(world, 'pulled', 'trust.json', 'IQP_E_RELEASE_ROLLBACK');
    expect(refused.json().error.details).toMatchObject({ sequence: 1, accepted_sequence: 3 });
    await world.ok(['release', 'resign', String(r1), '--key', 'release.key']);
    expect(await pulled('pulled')).toMatchObject({ release_id: r1, sequence: 4 });
  });

  it('an expired manifest (IQP_E_RELEASE_EXPIRED)', async () => {
    const draft = await releaseOf(world, 'r4-short-lived', BOTH, { publish: false });
    const admin = `/v1/admin/releases/${draft.id}`;
    const { body, next_sequence } = (await call(world.server.url, `${admin}/manifest-body`, { token: world.token })).json<{ body: ReleaseManifestBody; next_sequence: number }>();
    const key = await parseSecretKey(readFileSync(join(world.work, 'release.key'), 'utf8'), null);
    const expires = new Date(Math.ceil((Date.now() + 3000) / 1000) * 1000);
    const signed = signReleaseManifest({ ...body, sequence: next_sequence, signed_at: rfc3339(new Date()), expires_at: rfc3339(expires) }, key);
    const published = await call(world.server.url, `${admin}/publish`, { method: 'POST', token: world.token, json: { manifest_json: signed.manifestJson, signature: signed.signature } });
    expect(published.status, published.body.toString()).toBe(200);
    await new Promise((r) => setTimeout(r, expires.getTime() - Date.now() + 250));
    const refused = await expectRefusedPull(world, 'pulled', 'trust.json', 'IQP_E_RELEASE_EXPIRED');
    expect(refused.json().error.details).toEqual({ expires_at: rfc3339(expires) });
    await expectRefusedPull(world, 'fresh-expired', 'trust.json', 'IQP_E_RELEASE_EXPIRED');
  });

  describe('with a valid newer release r5', () => {
    let r5: { id: number; sequence: number | null };
    let textSha: string;

    beforeAll(async () => {
      r5 = await releaseOf(world, 'r5', BOTH);
      const latest = await world.ok(['release', 'latest']);
      expect(latest).toMatchObject({ release_id: r5.id, sequence: 6 });
      textSha = latest.artifacts.find((a: { role: string }) => a.role === 'text').sha256;
    });

    it('a pack swapped under the release: its bytes differ from the signed manifest (IQP_E_DOWNLOAD_MISMATCH)', async () => {
      const blob = join(world.data, 'blobs', 'sha256', textSha.slice(0, 2), textSha);
      const original = readFileSync(blob);
      const swapped = Buffer.from(original);
      swapped[swapped.length >> 1]! ^= 0xff;
      writeFileSync(blob, swapped);
      try {
        // audio sorts before text: its verified part is staged when text fails, and must go too.
        await expectRefusedPull(world, 'fresh-swapped', 'trust.json', 'IQP_E_DOWNLOAD_MISMATCH');
      } finally {
        writeFileSync(blob, original);
      }
    });

    it('a manifest edited in the registry database (IQP_E_SIG_INVALID), or re-signed with a trusted comment for another manifest (IQP_E_SIG_COMMENT_MISMATCH)', async () => {
      const row = () => ({ id: r5.id });
      let original: { manifest_json: string; signature: string } | undefined;
      await editDatabase((db) => {
        original = db.prepare('SELECT manifest_json, signature FROM dataset_releases WHERE id = @id').get(row()) as typeof original;
        const edited = original!.manifest_json.replace('"name": "r5"', '"name": "r5-but-other-packs"');
        expect(edited).not.toBe(original!.manifest_json);
        db.prepare('UPDATE dataset_releases SET manifest_json = ? WHERE id = ?').run(edited, r5.id);
      });
      await expectRefusedPull(world, 'pulled', 'trust.json', 'IQP_E_SIG_INVALID');

      // The release key's signature over exactly these bytes, but its trusted comment names sequence 99.
      const key = await parseSecretKey(readFileSync(join(world.work, 'release.key'), 'utf8'), null);
      const bytes = Buffer.from(original!.manifest_json, 'utf8');
      const comment = /trusted comment: (.*)\n/.exec(original!.signature)![1]!.replace(/sequence=\d+/, 'sequence=99');
      await editDatabase((db) => {
        db.prepare('UPDATE dataset_releases SET manifest_json = ?, signature = ? WHERE id = ?').run(original!.manifest_json, sign(bytes, key, comment), r5.id);
      });
      await expectRefusedPull(world, 'pulled', 'trust.json', 'IQP_E_SIG_COMMENT_MISMATCH');

      await editDatabase((db) => db.prepare('UPDATE dataset_releases SET signature = ? WHERE id = ?').run(original!.signature, r5.id));
      expect(await pulled('fresh-after')).toMatchObject({ release_id: r5.id, sequence: 6 });
    });
  });
});
