import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from './cursor.js';

describe('cursor', () => {
  it('round-trips and refuses anything it did not write', () => {
    const c = { epoch: 'AbC_-123xyz', seq: 9007199254740991 };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
    for (const bad of ['', '!!', 'x'.repeat(201), Buffer.from('short.1').toString('base64url'), Buffer.from('abcdefgh.01').toString('base64url'), Buffer.from('abcdefgh.-1').toString('base64url'), Buffer.from('abcdefgh.99999999999999999').toString('base64url')]) {
      expect(decodeCursor(bad), bad).toBeNull();
    }
  });
});
