import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { IqpError } from '../errors.js';
import { formatCount, formatRate, Output } from './output.js';

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

describe('Output on stderr', () => {
  function output(json: boolean) {
    const written = { stdout: '', stderr: '' };
    const sink = (name: 'stdout' | 'stderr') => new Writable({ write(chunk, _enc, done) { written[name] += String(chunk); done(); } });
    const out = new Output({ json, quiet: false, stdout: sink('stdout'), stderr: sink('stderr'), decorate: false });
    return { out, written };
  }

  it('escapes control characters in errors, warnings and notes (a registry or a source chose that text), keeping line breaks', () => {
    const { out, written } = output(false);
    out.error(new IqpError('IQP_E_REGISTRY', 'bad \u001b[2J answer\nsecond line \u202e'));
    out.warn('deprecated: \u001b]0;title\u0007');
    out.note('note \u001b[31m');
    expect(written.stderr).not.toMatch(/[\u001b\u0007\u202e]/);
    expect(written.stderr).toContain('bad \\x1b[2J answer\nsecond line \\u{202e}');
    expect(written.stderr).toContain('warning: deprecated: \\x1b]0;title\\x07');
    expect(written.stderr).toContain('note \\x1b[31m');
  });

  it('with --json writes warnings nowhere but the result: stderr stays empty', () => {
    const { out, written } = output(true);
    out.warn('release 3 is deprecated');
    out.result({ ok: true }, () => 'ok');
    expect(written.stderr).toBe('');
    expect(JSON.parse(written.stdout)).toEqual({ ok: true });
  });
});
