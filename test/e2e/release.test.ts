/**
 * `iqp pull --release latest` refusing what a hostile or broken registry serves, end to end: a
 * manifest signed by a release key apps do not pin, a rollback, an expired manifest, a pack
 * swapped under a release, a manifest edited in the registry's database. Every refusal exits as
 * the catalog says, leaves the trust-state file byte for byte as it was and nothing new in --out.
 *
 * Every test gets a registry and work dir of its own, copied from one set up once (keys, packs,
 * r1 published), and pulls r1 itself, so each passes alone and in any order.
 *
 * The client has no clock flag, so the expired case is made on the registry side, as the other
 * database edits here are: the published manifest is replaced by one the release key signed with
 * an expires_at already past, which is what an app sees from a registry nobody re-signed in time.
 */
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rfc3339 } from '../../src/client/releases.js';
import { parseSecretKey, sign } from '../../src/pack/minisign.js';
import { type ReleaseManifest, signReleaseManifest } from '../../src/pack/release-manifest.js';
import { copyWorld, expectRefusedPull, pullRelease, releaseOf, releaseWorld, type ReleaseWorld } from './release-helpers.js';

const BOTH = { text: 'e2e.text@1.0.0', audio: 'e2e.audio@1.0.0' };
let template: ReleaseWorld;
let world: ReleaseWorld;
/** The release every world starts with, published and pulled into `pulled` with trust.json. */
let r1: { id: number; sequence: number };

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
  template = await releaseWorld('iqp-e2e-refusals-', [
    { id: 'e2e.text', template: 'translation' },
    { id: 'e2e.audio', template: 'recitation' },
  ]);
  const first = await releaseOf(template, 'r1', BOTH);
  r1 = { id: first.id, sequence: first.sequence! };
  expect((await template.server.stop()).code).toBe(0);
});
beforeEach(async () => {
  world = await copyWorld(template, 'iqp-e2e-refusals-');
  expect(await pulled('pulled')).toMatchObject({ release_id: r1.id, sequence: r1.sequence });
});
afterEach(async () => {
  expect((await world?.server.stop())?.code).toBe(0);
});

describe('iqp pull --release refuses', () => {
  it('a manifest signed by a release key the registry accepts but the app does not pin (IQP_E_SIG_UNTRUSTED_KEY)', async () => {
    const rogue = await releaseOf(world, 'r2-rogue', BOTH, { key: 'rogue.key' });
    expect(rogue.sequence).toBe(r1.sequence + 1);
    await expectRefusedPull(world, 'pulled', 'trust.json', 'IQP_E_SIG_UNTRUSTED_KEY');
    await expectRefusedPull(world, 'fresh-untrusted', 'trust.json', 'IQP_E_SIG_UNTRUSTED_KEY');
    await world.ok(['release', 'deprecate', String(rogue.id), '--message', 'signed with the wrong key']);
    expect((await world.ok(['release', 'latest'])).release_id, 'r1 is the latest again').toBe(r1.id);
  });

  it('a rollback: the newer release deprecated after it was pulled (IQP_E_RELEASE_ROLLBACK), until the older one is re-signed', async () => {
    const r3 = await releaseOf(world, 'r3', { text: 'e2e.text@1.0.0' });
    expect(await pulled('pulled')).toMatchObject({ release_id: r3.id, sequence: r3.sequence });
    await world.ok(['release', 'deprecate', String(r3.id), '--message', 'bad text']);
    expect((await world.ok(['release', 'latest'])).release_id).toBe(r1.id);
    const refused = await expectRefusedPull(world, 'pulled', 'trust.json', 'IQP_E_RELEASE_ROLLBACK');
    expect(refused.json().error.details).toMatchObject({ sequence: r1.sequence, accepted_sequence: r3.sequence });
    await world.ok(['release', 'resign', String(r1.id), '--key', 'release.key']);
    expect(await pulled('pulled')).toMatchObject({ release_id: r1.id, sequence: r3.sequence! + 1 });
  });

  it('an expired manifest (IQP_E_RELEASE_EXPIRED)', async () => {
    const short = await releaseOf(world, 'r4-short-lived', BOTH);
    const key = await parseSecretKey(readFileSync(join(world.work, 'release.key'), 'utf8'), null);
    // Signed two days ago for one day: the same release and sequence, its expiry passed.
    const day = 86_400_000;
    const now = Math.floor(Date.now() / 1000) * 1000;
    const expires = new Date(now - day);
    await editDatabase((db) => {
      const row = db.prepare('SELECT manifest_json FROM dataset_releases WHERE id = ?').get(short.id) as { manifest_json: string };
      const manifest = JSON.parse(row.manifest_json) as ReleaseManifest;
      expect(manifest).toMatchObject({ release_id: short.id, sequence: short.sequence });
      const expired = signReleaseManifest({ ...manifest, signed_at: rfc3339(new Date(now - 2 * day)), expires_at: rfc3339(expires) }, key);
      db.prepare('UPDATE dataset_releases SET manifest_json = ?, signature = ? WHERE id = ?').run(expired.manifestJson, expired.signature, short.id);
    });
    const refused = await expectRefusedPull(world, 'pulled', 'trust.json', 'IQP_E_RELEASE_EXPIRED');
    expect(refused.json().error.details).toEqual({ expires_at: rfc3339(expires) });
    await expectRefusedPull(world, 'fresh-expired', 'trust.json', 'IQP_E_RELEASE_EXPIRED');
  });

  describe('with a valid newer release r5', () => {
    let r5: { id: number; sequence: number | null };
    let textSha: string;

    beforeEach(async () => {
      r5 = await releaseOf(world, 'r5', BOTH);
      const latest = await world.ok(['release', 'latest']);
      expect(latest).toMatchObject({ release_id: r5.id, sequence: r5.sequence });
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
      expect(await pulled('fresh-after')).toMatchObject({ release_id: r5.id, sequence: r5.sequence });
    });
  });
});
