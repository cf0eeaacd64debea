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
