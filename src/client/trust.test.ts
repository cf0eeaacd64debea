import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ChannelTrust, TrustStore } from './trust.js';

const ID = 'a'.repeat(32);
const URL_A = 'https://packs.example.org';
const state = (sequence: number): ChannelTrust => ({ sequence, manifest_sha256: String(sequence % 10).repeat(64), expires_at: '2099-01-01T00:00:00Z', release_id: sequence, accepted_at: '2026-01-01T00:00:00.000Z' });

function storeWith(content: unknown): TrustStore {
  const path = join(mkdtempSync(join(tmpdir(), 'iqp-trust-')), 'release-trust.json');
  if (content !== undefined) writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return new TrustStore(path);
}

describe('TrustStore', () => {
  it('keys by registry id and channel, whatever URL the manifest came from', () => {
    const store = storeWith(undefined);
    store.save(ID, 'stable', URL_A, state(4));
    expect(store.get(ID, 'stable', 'https://cdn.example.net/')).toMatchObject({ sequence: 4 });
    expect(store.get(ID, 'beta', URL_A)).toBeNull();
    expect(store.get('b'.repeat(32), 'stable', URL_A)).toBeNull();
  });

  it('reads a format 1 (URL-keyed) file and never returns less than its entry for the URL pulled from', () => {
    const store = storeWith({ format: 1, channels: { [`${URL_A} stable`]: state(9) } });
    expect(store.get(ID, 'stable', `${URL_A}/`)).toMatchObject({ sequence: 9 });
    expect(store.get(ID, 'stable', 'https://other.example')).toBeNull();
  });

  it('takes the higher of the id entry and a URL entry not yet moved', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'iqp-trust-')), 'release-trust.json');
    writeFileSync(path, JSON.stringify({ format: 2, registries: { [ID]: { stable: state(3) } }, urls: { [`${URL_A} stable`]: state(7) } }));
    const store = new TrustStore(path);
    expect(store.get(ID, 'stable', URL_A)).toMatchObject({ sequence: 7 });
    expect(store.get(ID, 'stable', 'https://mirror.example')).toMatchObject({ sequence: 3 });
  });

  it('a save moves the URL entry for that channel to the id, and keeps the others', () => {
    const store = storeWith({ format: 1, channels: { [`${URL_A} stable`]: state(2), [`${URL_A} beta`]: state(5) } });
    store.save(ID, 'stable', URL_A, state(3));
    const file = JSON.parse(readFileSync(store.path, 'utf8'));
    expect(file).toEqual({ format: 2, registries: { [ID]: { stable: state(3) } }, urls: { [`${URL_A} beta`]: state(5) } });
  });

  describe('two pulls at once (each checks against what it read, then saves)', () => {
    const file = (store: TrustStore) => JSON.parse(readFileSync(store.path, 'utf8'));

    it('a save keeps a higher sequence another pull saved meanwhile, and says so', () => {
      const a = storeWith(undefined);
      const b = new TrustStore(a.path);
      a.save(ID, 'stable', URL_A, state(10));
      a.save(ID, 'beta', URL_A, state(3));
      // A accepts sequence 12 against the 10 it read; meanwhile B accepts and saves 15.
      expect(a.get(ID, 'stable', URL_A)).toMatchObject({ sequence: 10 });
      b.save(ID, 'stable', URL_A, state(15));
      const kept = a.save(ID, 'stable', URL_A, state(12));
      expect(file(a).registries[ID]).toEqual({ stable: state(15), beta: state(3) });
      expect(kept).toEqual(state(15));
      // Forward still moves forward.
      expect(a.save(ID, 'stable', URL_A, state(16))).toEqual(state(16));
      expect(a.get(ID, 'stable', URL_A)).toEqual(state(16));
    });

    it('the same sequence with other bytes keeps the manifest accepted first; the same manifest again is saved', () => {
      const store = storeWith(undefined);
      store.save(ID, 'stable', URL_A, state(15));
      const other = { ...state(15), manifest_sha256: 'f'.repeat(64) };
      const kept = store.save(ID, 'stable', URL_A, other);
      expect(store.get(ID, 'stable', URL_A)).toEqual(state(15));
      expect(kept).toEqual(state(15));
      const again = { ...state(15), accepted_at: '2026-02-01T00:00:00.000Z' };
      expect(store.save(ID, 'stable', URL_A, again)).toEqual(again);
      expect(store.get(ID, 'stable', URL_A)).toEqual(again);
    });

    it('a higher URL entry from an older iqp is kept too, moved to the registry id', () => {
      const store = storeWith({ format: 1, channels: { [`${URL_A} stable`]: state(20) } });
      const kept = store.save(ID, 'stable', URL_A, state(12));
      expect(file(store)).toEqual({ format: 2, registries: { [ID]: { stable: state(20) } }, urls: {} });
      expect(kept).toEqual(state(20));
    });
  });

  it('refuses a file it does not understand, without touching it', () => {
    for (const bad of ['{', '[]', { format: 3, registries: {}, urls: {} }, { format: 2, registries: { [ID]: 1 }, urls: {} }, { format: 1 }]) {
      const store = storeWith(bad);
      const before = readFileSync(store.path);
      expect(() => store.get(ID, 'stable', URL_A)).toThrow(expect.objectContaining({ code: 'IQP_E_CONFIG' }));
      expect(() => store.save(ID, 'stable', URL_A, state(1))).toThrow(expect.objectContaining({ code: 'IQP_E_CONFIG' }));
      expect(readFileSync(store.path)).toEqual(before);
    }
  });
});
