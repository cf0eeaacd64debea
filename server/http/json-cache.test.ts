import { parse } from 'node:querystring';
import { describe, expect, it } from 'vitest';
import { queryValues } from './json-cache.js';

describe('queryValues', () => {
  it('gives the values querystring.parse (Express’s query parser) gives, for the names asked', () => {
    const names = ['a', 'b', '', 'c d'];
    const cases = [
      '',
      'a=1',
      'a=1&b=2',
      'a=1&a=2&a=3',
      'a',
      'a=',
      '=x',
      'a=1=2',
      '&&a=1&&',
      'a=%31',
      'a=x+y',
      'c+d=1',
      'c%20d=1',
      'a=%E0',
      'b=1&x=2&a=3&b=4',
      'a=<"\'>&b=;,/?:@',
      Array.from({ length: 1100 }, (_, i) => `k${i}=1`).join('&') + '&a=late',
      `a=${'z'.repeat(5000)}`,
    ];
    for (const qs of cases) {
      const expected = parse(qs);
      const got = queryValues(qs, names);
      for (const name of names) expect(got[name], `${JSON.stringify(qs.slice(0, 60))} ${name}`).toEqual(expected[name]);
    }
  });
});
