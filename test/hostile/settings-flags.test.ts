/**
 * Integer settings on the command line take canonical decimal digits only: what `Number()` would
 * read as something else (hex, exponents, padding, signs, trailing junk) is a usage error naming
 * the flag, before anything is read or written.
 */
import { describe, expect, it } from 'vitest';
import { iqp, listTree, tempDir } from '../e2e/helpers.js';

const NOT_CANONICAL = ['0x2', '1e1', ' 12', '-0', '12abc', '+3', '1.0', '', '0b1', '٣'];

async function refused(args: readonly string[], flag: string): Promise<void> {
  const dir = tempDir('iqp-hostile-settings-');
  const r = await iqp([...args, '--json'], { cwd: dir, env: { HOME: dir } });
  expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
  const error = r.json<{ error: { code: string; message: string } }>().error;
  expect(error.code, args.join(' ')).toBe('IQP_E_USAGE');
  expect(error.message, args.join(' ')).toContain(flag);
  expect(r.stderr).toBe('');
  expect(listTree(dir), 'nothing written').toEqual([]);
}

describe('integer flags', () => {
  it('build --level, --threads and --max-line-bytes refuse what is not canonical decimal', async () => {
    for (const v of NOT_CANONICAL) {
      await refused(['build', '--unsigned', '--level', v], '--level');
      await refused(['build', '--unsigned', '--threads', v], '--threads');
      await refused(['build', '--unsigned', '--max-line-bytes', v], '--max-line-bytes');
    }
  });

  it('verify, inspect and pull --max-size refuse what is not canonical decimal', async () => {
    for (const v of ['0x10', '1e6', '-0', '12abc']) {
      await refused(['verify', 'x.iqp', '--max-size', v], '--max-size');
      await refused(['inspect', 'x.iqp', '--max-size', v], '--max-size');
      await refused(['pull', 'x.pack', '--registry', 'http://127.0.0.1:9', '--max-size', v], '--max-size');
    }
  });

  it('audit --limit, release list --limit and release publish --expires-in refuse what is not canonical decimal', async () => {
    for (const v of ['0x2', '1e1']) {
      await refused(['audit', '--registry', 'http://127.0.0.1:9', '--token', 't', '--limit', v], '--limit');
      await refused(['release', 'list', '--registry', 'http://127.0.0.1:9', '--token', 't', '--limit', v], '--limit');
      await refused(['release', 'publish', '1', '--registry', 'http://127.0.0.1:9', '--token', 't', '--key', 'none.key', '--expires-in', v], '--expires-in');
    }
  });
});
