/** The change counter read through SqliteWrites: cheap on the hot path, never hiding this connection's writes. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteMetadataStore } from './metadata.js';
import { SqliteReleaseStore } from './releases.js';
import { SqliteWrites } from './writes.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function twoConnections() {
  const dir = mkdtempSync(join(tmpdir(), 'iqp-writes-'));
  dirs.push(dir);
  const path = join(dir, 'registry.sqlite');
  const mine = new SqliteMetadataStore(path);
  await mine.migrate();
  const other = new SqliteMetadataStore(path);
  return { mine, other };
}

const key = (id: string) => ({ key_id: id.padEnd(16, '0'), public_key: 'pk', name: id, added_at: '2026-12-06T00:00:00Z', purpose: 'pack' as const });
const audit = { at: '2026-12-06T00:00:00Z', actor: 'test', action: 'key.add', target: 'key', details: null };

describe('SqliteWrites', () => {
  it('keeps a read for at most memoMs; another connection’s write is seen once it lapses', async () => {
    const { mine, other } = await twoConnections();
    let t = 1000;
    const writes = new SqliteWrites(mine.db, () => t, 1);
    const before = writes.generation();
    await other.addKey(key('k1'), audit);
    t += 0.5;
    expect(writes.generation(), 'within the memo window the kept value answers').toBe(before);
    t += 0.6;
    expect(writes.generation(), 'past it the counter is read again').toBeGreaterThan(before);
    await Promise.all([mine.close(), other.close()]);
  });

  it('a write through the same connection is seen at once, by the metadata store and by the release store', async () => {
    const { mine, other } = await twoConnections();
    const releases = new SqliteReleaseStore(mine);
    const g0 = mine.generation();
    await mine.addKey(key('k1'), audit);
    const g1 = mine.generation();
    expect(g1).toBeGreaterThan(g0);
    await releases.upsertProfile({ name: 'p', roles: [], description: '', updated_at: '2026-12-06T00:00:00Z' }, 'test');
    expect(mine.generation()).toBeGreaterThan(g1);
    await Promise.all([mine.close(), other.close()]);
  });

  it('a write that fails and rolls back drops the kept value too', async () => {
    const { mine, other } = await twoConnections();
    const t = 0;
    const writes = new SqliteWrites(mine.db, () => t, 1_000_000);
    const before = writes.generation();
    await other.addKey(key('k1'), audit);
    expect(() =>
      writes.run(() => {
        throw new Error('refused');
      }),
    ).toThrow('refused');
    expect(writes.generation()).toBeGreaterThan(before);
    await Promise.all([mine.close(), other.close()]);
  });
});
