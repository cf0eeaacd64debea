import { describe, expect, it } from 'vitest';
import { findJsonSyntaxError, lineColumn } from './json-syntax.js';

describe('findJsonSyntaxError', () => {
  it.each([
    ['{"a": 1,\n "b": }', 15, 'expected a value'],
    ['{"a": 1\n "b": 2}', 9, "expected ',' or '}'"],
    ['{"a" 1}', 5, "expected ':'"],
    ['{a: 1}', 1, 'member name in double quotes'],
    ['[1, 2,]', 6, 'expected a value'],
    ['{"a": "x\ty"}', 8, 'control characters'],
    ['{"a": "\\q"}', 8, 'unknown escape'],
    ['{"a": "open', 11, 'never closed'],
    ['{"a": 1} x', 9, 'end of the text'],
    ['', 0, 'ends where a value was expected'],
    ['{"a": -}', 6, 'expected a digit'],
  ])('%j: offset %i', (text, offset, reason) => {
    const found = findJsonSyntaxError(text);
    expect(found?.offset).toBe(offset);
    expect(found?.reason).toContain(reason);
  });

  it('agrees with JSON.parse on whether text is valid, for seeded mutations of a document', () => {
    const seed = 20260101;
    let state = seed;
    const random = (n: number): number => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state % n;
    };
    const base = JSON.stringify({ a: [1, -2.5e3, true, null, { b: 'c\\"d\u00e9' }], e: {}, f: [], g: '\\u0041' });
    const alphabet = '{}[],:"\\ 0123456789-+.eEtrufalsn\tx';
    for (let k = 0; k < 5000; k++) {
      const chars = [...base];
      for (let m = 1 + random(3); m > 0; m--) {
        const at = random(chars.length + 1);
        const op = random(3);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, alphabet[random(alphabet.length)]!);
        else chars[at] = alphabet[random(alphabet.length)]!;
      }
      const text = chars.join('');
      let valid = true;
      try {
        JSON.parse(text);
      } catch {
        valid = false;
      }
      expect(findJsonSyntaxError(text) === null, `seed ${seed}, case ${k}: ${text}`).toBe(valid);
    }
  });

  it('finds an error under nesting far deeper than a recursive parser could go', () => {
    expect(findJsonSyntaxError(`${'['.repeat(200_000)}x`)?.offset).toBe(200_000);
  });
});

describe('lineColumn', () => {
  it('counts lines from 1 and columns from 1', () => {
    expect(lineColumn('ab\ncd\nef', 0)).toEqual({ line: 1, column: 1 });
    expect(lineColumn('ab\ncd\nef', 4)).toEqual({ line: 2, column: 2 });
    expect(lineColumn('ab\ncd\nef', 6)).toEqual({ line: 3, column: 1 });
  });
});
