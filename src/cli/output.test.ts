import { describe, expect, it } from 'vitest';
import { formatCount, formatRate } from './output.js';

describe('formatCount', () => {
  it('groups thousands as en-US number formatting does', () => {
    const samples = [0, 1, 12, 123, 999, 1000, 1001, 9999, 12345, 100000, 999999, 1000000, 1234567, 2 ** 31, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 2000; i++) samples.push(Math.floor(Math.random() * 10 ** Math.floor(Math.random() * 15)));
    for (const n of samples) {
      expect(formatCount(n), String(n)).toBe(n.toLocaleString('en-US'));
      if (n !== 0) expect(formatCount(-n), String(-n)).toBe((-n).toLocaleString('en-US'));
    }
  });

  it('rounds to a whole number', () => {
    expect(formatCount(1234.4)).toBe('1,234');
    expect(formatCount(1234.5)).toBe('1,235');
    expect(formatCount(-0.2)).toBe('0');
  });

  it('formats rates', () => {
    expect(formatRate(2_500_000, 2, 'rows')).toBe('1,250,000 rows/s');
    expect(formatRate(5, 0, 'rows')).toBe('5 rows');
  });
});
