/**
 * A pack's manifest is text from whoever built it. `iqp inspect` shows it to a person, so control
 * characters (terminal escapes, bells, line rewrites) and bidirectional overrides are shown
 * escaped; --json stays the exact strings.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { iqp } from '../e2e/helpers.js';
import { templateSource } from './source-helpers.js';

const HOSTILE = {
  name: 'Fine pack\u001b]0;pwned\u0007\u001b[2J',
  description: 'Looks fine\r\u001b[1Aforged line\u202etxt.exe\u2066',
  license: 'CC0\u0085\u009b31m',
  attribution: 'Someone\u200f\u061c\nSecond line',
};

describe('iqp inspect shows hostile manifest text escaped', () => {
  it('escapes control and bidi characters for people, and keeps --json exact', async () => {
    const dir = templateSource();
    const authored = { ...JSON.parse(readFileSync(join(dir, 'iqp.json'), 'utf8')), ...HOSTILE };
    writeFileSync(join(dir, 'iqp.json'), JSON.stringify(authored));
    const built = await iqp(['build', '.', '--unsigned', '--out', 'p.iqp', '--json'], { cwd: dir });
    expect(built.code, built.stdout).toBe(0);

    const human = await iqp(['inspect', 'p.iqp'], { cwd: dir });
    expect(human.code, human.stderr).toBe(0);
    // Nothing that steers a terminal or reorders text gets through.
    expect(human.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
    expect(human.stdout).toContain('Fine pack\\x1b]0;pwned\\x07\\x1b[2J');
    expect(human.stdout).toContain('Looks fine\\r\\x1b[1Aforged line\\u{202e}txt.exe\\u{2066}');
    expect(human.stdout).toContain('license: CC0\\x85\\x9b31m');
    expect(human.stdout).toContain('attribution: Someone\\u{200f}\\u{61c}\\nSecond line');

    const json = await iqp(['inspect', 'p.iqp', '--json'], { cwd: dir });
    expect(json.json().manifest).toMatchObject(HOSTILE);
  });
});
