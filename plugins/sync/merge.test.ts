import { describe, expect, it } from 'vitest';
import { applyPatch, changedFields, mergePatch, mergeUpsert, same } from './merge.js';

describe('merge', () => {
  it('compares JSON values deeply', () => {
    expect(same({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toBe(true);
    expect(same({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(same([1, 2], { 0: 1, 1: 2 })).toBe(false);
    expect(same(0, false)).toBe(false);
  });

  it('takes each side’s own changes and marks fields both changed', () => {
    const base = { a: 1, b: 1, c: 1, d: 1 };
    const current = { a: 2, b: 1, c: 3, d: 1, e: 'new there' };
    const incoming = { a: 1, b: 5, c: 4 }; // dropped d, kept a as it was, changed b and c
    const m = mergeUpsert(base, current, incoming, changedFields(base, current));
    expect(m.doc).toEqual({ a: 2, b: 5, c: 4, e: 'new there' });
    expect(m.conflicts).toEqual(['c']);
    expect(m.loser).toEqual({ a: 2, b: 5, c: 3, e: 'new there' });
    expect(m.kept).toBe(true);
  });

  it('counts equal changes on both sides as no conflict', () => {
    const m = mergePatch({ a: 1 }, { a: 2 }, { a: 2 }, new Set(['a']));
    expect(m).toMatchObject({ doc: { a: 2 }, conflicts: [] });
  });

  it('patches only the fields named, and keeps a field called __proto__ as a field', () => {
    const patched = applyPatch({ a: 1 }, JSON.parse('{"__proto__": {"polluted": true}, "b": 2}'));
    expect(Object.keys(patched)).toEqual(['a', '__proto__', 'b']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const m = mergePatch({ a: 1, b: 1 }, { a: 1, b: 9 }, { a: 3 }, new Set(['b']));
    expect(m).toMatchObject({ doc: { a: 3, b: 9 }, conflicts: [], kept: true });
  });
});
