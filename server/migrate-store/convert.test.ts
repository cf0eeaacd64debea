import { describe, expect, it } from 'vitest';
import { converter } from './convert.js';

const of = (dataType: string) => converter({ table: 't', column: 'c', dataType });

describe('a SQLite value for a PostgreSQL column', () => {
  it('keeps integers exact, past 2^53 too', () => {
    expect(of('bigint')(2n ** 62n + 1n)).toBe('4611686018427387905');
    expect(of('integer')(7)).toBe('7');
    expect(of('numeric')(1.5)).toBe('1.5');
    expect(() => of('integer')(1.5)).toThrow(expect.objectContaining({ code: 'IQP_E_STORE_INCOMPATIBLE', details: { table: 't', column: 'c', type: 'integer' } }));
  });

  it('turns 0 and 1 into booleans and refuses other numbers', () => {
    expect([of('boolean')(0n), of('boolean')(1n), of('boolean')(1)]).toEqual([false, true, true]);
    expect(() => of('boolean')(2n)).toThrow(/booleans are 0 or 1/);
  });

  it('passes text (JSON, times as stored) through, and refuses U+0000, which PostgreSQL text cannot hold', () => {
    expect(of('jsonb')('{"a":1}')).toBe('{"a":1}');
    expect(of('text')('é')).toBe('é');
    expect(of('timestamp with time zone')('2025-01-02T03:04:05.678Z')).toBe('2025-01-02T03:04:05.678Z');
    expect(() => of('text')('a\u0000b')).toThrow(/U\+0000/);
    expect(() => of('timestamp with time zone')(1_700_000_000n)).toThrow(/as the text they are stored as/);
  });

  it('moves BLOBs into bytea, and refuses them in text columns', () => {
    expect(of('bytea')(Buffer.from([0, 255]))).toEqual(Buffer.from([0, 255]));
    expect(() => of('text')(Buffer.from([0]))).toThrow(/a BLOB/);
  });

  it('keeps NULL', () => {
    for (const t of ['boolean', 'bigint', 'bytea', 'text', 'jsonb']) expect(of(t)(null)).toBeNull();
  });
});
