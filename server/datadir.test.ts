/** Start-up recovery: which unreferenced blobs it removes, and which it must leave for later. */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { samplePack } from '../test/server/store-conformance.js';
import { openStores, recoverDataDir } from './datadir.js';
import { lockDataDir } from './lock.js';
import { FsBlobStore } from './stores/fs-blobs.js';
import { ORPHAN_GRACE_MS } from './stores/types.js';

describe('recoverDataDir', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'iqp-recover-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  /** Commits `text` as a blob written `ageMs` before `now`; returns its sha256. */
  async function blob(text: string, now: number, ageMs: number): Promise<string> {
    const blobs = new FsBlobStore(dataDir);
    await blobs.init();
    const staged = await blobs.stage();
    await writeFile(staged.path, text);
    const sha = createHash('sha256').update(text).digest('hex');
    await staged.commit(sha);
    const at = new Date(now - ageMs);
    await utimes(join(blobs.blobDir, sha.slice(0, 2), sha), at, at);
    return sha;
  }

  it('removes unreferenced blobs past the grace period, and keeps young ones and referenced ones', async () => {
    // A clock far from the machine's, so that only the clock passed in can decide what is old.
    const now = Date.parse('2031-05-01T12:00:00Z');
    const old = await blob('orphaned by a crash long ago', now, ORPHAN_GRACE_MS + 60_000);
    const young = await blob('committed just now, its row not written yet', now, ORPHAN_GRACE_MS - 60_000);
    const kept = await blob('published long ago', now, 10 * ORPHAN_GRACE_MS);
    const opened = await openStores(dataDir, 'test');
    const pack = samplePack({ id: 'kept.pack', version: '1.0.0', sha256: kept });
    await opened.meta.insertPack(pack, { at: pack.published_at, actor: 'test', action: 'pack.publish', target: 'kept.pack@1.0.0', details: null });
    await opened.meta.close();

    const lock = lockDataDir(dataDir, 'test');
    try {
      const { stores, recovery } = await recoverDataDir(lock, undefined, () => now);
      expect(recovery.sweptOrphans).toBe(1);
      expect((await stores.blobs.list()).map((b) => b.sha256)).toEqual([young, kept].sort());
      expect(await stores.blobs.has(old)).toBe(false);
      await stores.meta.close();
    } finally {
      lock.release();
    }
  });
});
