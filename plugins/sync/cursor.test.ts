import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, expired } from './cursor.js';

describe('cursor', () => {
  it('round-trips and refuses anything it did not write', () => {
    const c = { epoch: 'AbC_-123xyz', seq: 9007199254740991 };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
    for (const bad of ['', '!!', 'x'.repeat(201), Buffer.from('short.1').toString('base64url'), Buffer.from('abcdefgh.01').toString('base64url'), Buffer.from('abcdefgh.-1').toString('base64url'), Buffer.from('abcdefgh.99999999999999999').toString('base64url')]) {
      expect(decodeCursor(bad), bad).toBeNull();
    }
  });

  it('carries the floor only below it, refuses a floor at or under its seq, and expires once the floor moves', () => {
    const below = { epoch: 'AbC_-123xyz', seq: 3, floor: 5 };
    expect(decodeCursor(encodeCursor(below))).toEqual(below);
    expect(decodeCursor(encodeCursor({ epoch: 'AbC_-123xyz', seq: 7, floor: 5 }))).toEqual({ epoch: 'AbC_-123xyz', seq: 7 });
    for (const bad of ['abcdefgh.3.3', 'abcdefgh.3.2', 'abcdefgh.3.0', 'abcdefgh.3.05', 'abcdefgh.3.5.6']) expect(decodeCursor(Buffer.from(bad).toString('base64url')), bad).toBeNull();
    expect(expired(below, 5)).toBe(false);
    expect(expired(below, 6)).toBe(true);
    expect(expired({ epoch: 'AbC_-123xyz', seq: 3 }, 5)).toBe(true);
    expect(expired({ epoch: 'AbC_-123xyz', seq: 0 }, 5)).toBe(false);
    expect(expired({ epoch: 'AbC_-123xyz', seq: 5 }, 5)).toBe(false);
  });
});
