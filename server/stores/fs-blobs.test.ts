/** The embedded blob store (content-addressed files) against the shared store contract. */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, unlinkSync } from 'node:fs';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobStoreConformance } from '../../test/server/store-conformance.js';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { type BlobFile, FsBlobStore } from './fs-blobs.js';

blobStoreConformance('FsBlobStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'iqp-blobs-'));
  const store = new FsBlobStore(dir);
  return {
    store,
    age: (sha256, at) => utimes(join(store.blobDir, sha256.slice(0, 2), sha256), at, at),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('FsBlobStore.openFile (shared descriptors for pack downloads)', () => {
  async function withStore<T>(fn: (store: FsBlobStore, put: (bytes: Buffer) => Promise<string>) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), 'iqp-blobs-open-'));
    const store = new FsBlobStore(dir);
    await store.init();
    const put = async (bytes: Buffer) => {
      const staged = await store.stage();
      await writeFile(staged.path, bytes);
      const sha = createHash('sha256').update(bytes).digest('hex');
      await staged.commit(sha);
      return sha;
    };
    try {
      return await fn(store, put);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  const readAll = async (file: BlobFile, length: number) => {
    const buf = Buffer.alloc(length);
    expect(await file.read(buf, 0, length, 0)).toBe(length);
    return buf;
  };
  const fds = () => readdirSync('/proc/self/fd').length;

  it('reads the bytes; concurrent users share one descriptor, closed once unused for a while', async () => {
    await withStore(async (store, put) => {
      const bytes = randomBytes(10_000);
      const sha = await put(bytes);
      const before = fds();
      // The idle sweep's clock and interval are the test's: time is moved, not waited for.
      vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] });
      onTestFinished(() => {
        vi.useRealTimers();
      });
      const a = await store.openFile(sha);
      const b = await store.openFile(sha);
      expect(fds()).toBe(before + 1);
      expect((await readAll(a, bytes.length)).equals(bytes)).toBe(true);
      expect((await readAll(b, bytes.length)).equals(bytes)).toBe(true);
      a.close();
      b.close();
      b.close(); // twice is harmless
      await expect(a.read(Buffer.alloc(1), 0, 1, 0)).rejects.toThrow();
      expect(fds()).toBe(before + 1);
      vi.advanceTimersByTime(500);
      expect(fds()).toBe(before + 1);
      vi.advanceTimersByTime(2000);
      expect(fds()).toBe(before);
    });
  });

  it('never serves a blob removed behind its back, nor one that delete() removed, from a kept descriptor', async () => {
    await withStore(async (store, put) => {
      const sha = await put(randomBytes(1000));
      (await store.openFile(sha)).close();
      unlinkSync(join(store.blobDir, sha.slice(0, 2), sha));
      await expect(store.openFile(sha)).rejects.toMatchObject({ code: 'ENOENT' });
      const again = await put(Buffer.from('another blob'));
      (await store.openFile(again)).close();
      await store.delete(again);
      await expect(store.openFile(again)).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });

  it('a blob replaced by a rename (a re-committed upload) is opened again', async () => {
    await withStore(async (store, put) => {
      const bytes = randomBytes(5000);
      const sha = await put(bytes);
      const held = await store.openFile(sha);
      await put(bytes); // the same content committed again: a new file renamed over the path
      const fresh = await store.openFile(sha);
      expect((await readAll(fresh, bytes.length)).equals(bytes)).toBe(true);
      expect((await readAll(held, bytes.length)).equals(bytes)).toBe(true); // the old descriptor stays valid for its user
      held.close();
      fresh.close();
    });
  });
});
