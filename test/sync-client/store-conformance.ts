/**
 * The one conformance suite every SyncStore adapter passes (unstorage's habit): the same cases over
 * each, so the client can rely on the interface and nothing else.
 */
import { describe, expect, it } from 'vitest';
import type { SyncStore } from '../../src/sync-client/store.js';

export interface AdapterUnderTest {
  /** A fresh, empty store of this kind. */
  create(): Promise<SyncStore>;
  /** The same store as a new process would open it (durable adapters only). */
  reopen?(store: SyncStore): Promise<SyncStore>;
}

export function storeConformance(name: string, adapter: AdapterUnderTest): void {
  describe(`SyncStore conformance: ${name}`, () => {
    async function withStore(fn: (s: SyncStore) => Promise<void>): Promise<void> {
      const s = await adapter.create();
      try {
        await fn(s);
      } finally {
        await s.close?.();
      }
    }

    it('gets what was set, undefined for what was not', () =>
      withStore(async (s) => {
        expect(await s.get('a')).toBeUndefined();
        await s.write({ set: { a: '1', b: '' } });
        expect(await s.get('a')).toBe('1');
        expect(await s.get('b')).toBe('');
        expect(await s.get('c')).toBeUndefined();
      }));

    it('overwrites and deletes; deleting a missing key is fine', () =>
      withStore(async (s) => {
        await s.write({ set: { a: '1', b: '2' } });
        await s.write({ set: { a: '3' }, del: ['b', 'nope'] });
        expect(await s.get('a')).toBe('3');
        expect(await s.get('b')).toBeUndefined();
      }));

    it('applies deletes before sets: a key in both ends up set', () =>
      withStore(async (s) => {
        await s.write({ set: { k: 'old' } });
        await s.write({ set: { k: 'new' }, del: ['k'] });
        expect(await s.get('k')).toBe('new');
      }));

    it('accepts an empty batch', () =>
      withStore(async (s) => {
        await s.write({});
        await s.write({ set: {}, del: [] });
        expect(await s.scan('')).toEqual([]);
      }));

    it('scans exactly the keys with the prefix, sorted by key', () =>
      withStore(async (s) => {
        await s.write({ set: { 'q/0003': 'c', 'q/0001': 'a', 'q/0002': 'b', q: 'bare', 'q0': 'next', 'p/9': 'before', 'q/': 'empty-tail' } });
        expect(await s.scan('q/')).toEqual([
          ['q/', 'empty-tail'],
          ['q/0001', 'a'],
          ['q/0002', 'b'],
          ['q/0003', 'c'],
        ]);
        expect((await s.scan('')).map(([k]) => k)).toEqual(['p/9', 'q', 'q/', 'q/0001', 'q/0002', 'q/0003', 'q0']);
        expect(await s.scan('zz')).toEqual([]);
      }));

    it('orders and matches any text the way JS compares strings (UTF-16 code units)', () =>
      withStore(async (s) => {
        const keys = ['v/card/é', 'v/card/\u{1F600}', 'v/card/\uffff', 'v/card/\ue000', 'v/card/a b', 'v/card/日本', 'v/card/\uffff\uffff', 'v/card\uffff', 'v/carde'];
        await s.write({ set: Object.fromEntries(keys.map((k, i) => [k, String(i)])) });
        const want = keys.filter((k) => k.startsWith('v/card/')).sort();
        expect((await s.scan('v/card/')).map(([k]) => k)).toEqual(want);
        expect((await s.scan('v/card/\uffff')).map(([k]) => k)).toEqual(['v/card/\uffff', 'v/card/\uffff\uffff']);
        expect((await s.scan('v/card/\u{1F600}')).map(([k]) => k)).toEqual(['v/card/\u{1F600}']);
      }));

    it('keeps values byte for byte: newlines, quotes, NUL, lone surrogates aside, a megabyte', () =>
      withStore(async (s) => {
        const big = 'x'.repeat(1024 * 1024);
        const odd = 'line1\nline2\r\n"quoted" \\ \u0000 tab\t é \u{1F600}';
        await s.write({ set: { big, odd, json: JSON.stringify({ a: [1, 2] }) } });
        expect(await s.get('big')).toBe(big);
        expect(await s.get('odd')).toBe(odd);
        expect(await s.get('json')).toBe('{"a":[1,2]}');
      }));

    it('refuses a batch with a value that is not a string, and writes none of it', () =>
      withStore(async (s) => {
        await s.write({ set: { keep: '1' } });
        await expect(s.write({ set: { a: 'ok', b: 5 as unknown as string }, del: ['keep'] })).rejects.toThrow();
        expect(await s.get('a')).toBeUndefined();
        expect(await s.get('keep')).toBe('1');
      }));

    it('serialises concurrent writes: every one lands', () =>
      withStore(async (s) => {
        await Promise.all(Array.from({ length: 50 }, (_, i) => s.write({ set: { [`k/${String(i).padStart(2, '0')}`]: String(i) } })));
        expect((await s.scan('k/')).length).toBe(50);
      }));

    if (adapter.reopen) {
      const reopen = adapter.reopen;
      it('keeps everything across a reopen', async () => {
        let s = await adapter.create();
        for (let i = 0; i < 200; i++) await s.write({ set: { [`n/${i}`]: `v${i}`, last: String(i) }, ...(i % 3 === 0 ? { del: [`n/${i - 3}`] } : {}) });
        const before = await s.scan('');
        s = await reopen(s);
        try {
          expect(await s.scan('')).toEqual(before);
          await s.write({ set: { after: 'yes' } });
          s = await reopen(s);
          expect(await s.get('after')).toBe('yes');
          expect(await s.get('last')).toBe('199');
        } finally {
          await s.close?.();
        }
      });
    }
  });
}
