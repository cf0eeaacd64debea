import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PLACEHOLDERS } from '../../src/pack/authoring.js';
import { TEMPLATE_NAMES } from '../../src/pack/requirements.js';
import { baseEnv, BIN, iqp, listTree, tempDir, TEMPLATES } from './helpers.js';

describe('iqp init', () => {
  it.each(TEMPLATE_NAMES)('copies the %s template with the given id, language and name', async (template) => {
    const cwd = tempDir();
    const r = await iqp(['init', 'src', '--template', template, '--id', `acme.${template}.ur`, '--lang', 'ur-PK', '--name', 'Acme pack', '--json'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ template, package_id: `acme.${template}.ur`, language_code: 'ur-PK', name: 'Acme pack' });
    // The generated tree is the template's, with _gitignore renamed.
    const expected = listTree(join(TEMPLATES, template)).map((p) => (p === '_gitignore' ? '.gitignore' : p)).sort();
    expect(listTree(join(cwd, 'src'))).toEqual(expected);
    for (const file of expected.filter((p) => p !== 'iqp.json' && p !== '.gitignore')) {
      expect(readFileSync(join(cwd, 'src', file), 'utf8')).toBe(readFileSync(join(TEMPLATES, template, file), 'utf8'));
    }
    const authored = JSON.parse(readFileSync(join(cwd, 'src', 'iqp.json'), 'utf8'));
    const original = JSON.parse(readFileSync(join(TEMPLATES, template, 'iqp.json'), 'utf8'));
    // The template's description, license and attribution describe its example, not this pack.
    expect(authored).toEqual({ ...original, package_id: `acme.${template}.ur`, language_code: 'ur-PK', name: 'Acme pack', ...PLACEHOLDERS });
  });

  it('asks for description, license and attribution at a terminal, offering the placeholder for another pack', async () => {
    const cwd = tempDir();
    // `script` gives iqp a terminal; each answer is typed once its question is on the screen.
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} init fr --template translation --id acme.translation.fr --lang fr --name Le`;
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, env: baseEnv({ CI: undefined, TERM: 'dumb' }), stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    const waiters: Array<[string, () => void]> = [];
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      screen += d;
      for (const [text, resolve] of waiters.splice(0)) if (screen.includes(text)) resolve();
      else waiters.push([text, resolve]);
    });
    const shown = (text: string) => new Promise<void>((resolve) => (screen.includes(text) ? resolve() : waiters.push([text, resolve])));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await shown('Description');
    child.stdin.write('Une traduction\r');
    await shown('License');
    child.stdin.write('\r');
    await shown('Attribution');
    child.stdin.write('Équipe X\r');
    expect(await closed, screen).toBe(0);
    const authored = JSON.parse(readFileSync(join(cwd, 'fr', 'iqp.json'), 'utf8'));
    expect(authored).toMatchObject({ description: 'Une traduction', license: PLACEHOLDERS.license, attribution: 'Équipe X' });
  });

  it('takes description, license and attribution from flags', async () => {
    const cwd = tempDir();
    const texts = { description: 'Traduction française du sens du Coran.', license: 'CC-BY-4.0', attribution: 'Traduction : Équipe X.' };
    const r = await iqp(['init', 'fr', '--template', 'translation', '--id', 'acme.translation.fr', '--lang', 'fr', '--name', 'Le Coran', '--description', texts.description, '--license', texts.license, '--attribution', texts.attribution], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(cwd, 'fr', 'iqp.json'), 'utf8'))).toMatchObject(texts);
    // Such a source builds with --strict (once its data is the author's own).
    const built = await iqp(['build', 'fr', '--unsigned', '--strict', '--out', 'fr.iqp', '--json'], { cwd });
    expect(built.code, built.stdout).toBe(0);
  });

  it('with --yes uses the template defaults without asking', async () => {
    const cwd = tempDir();
    const r = await iqp(['init', 'my-foods', '--template', 'dataset', '--yes'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    const authored = JSON.parse(readFileSync(join(cwd, 'my-foods', 'iqp.json'), 'utf8'));
    expect(authored.package_id).toBe('my-foods');
    // The example as it is: its own texts still describe it.
    const original = JSON.parse(readFileSync(join(TEMPLATES, 'dataset', 'iqp.json'), 'utf8'));
    expect(authored.description).toBe(original.description);
    expect(r.stdout).toContain('Created a dataset pack source');
  });

  it('never prompts without a terminal: a missing value is a usage error naming the flag, and nothing is written', async () => {
    const cwd = tempDir();
    for (const env of [{ CI: 'true' }, { CI: undefined }]) {
      const r = await iqp(['init', 'x', '--json'], { cwd, env });
      expect(r.code).toBe(2);
      expect(r.json().error).toMatchObject({ code: 'IQP_E_MISSING_OPTION' });
      expect(r.json().error.message).toContain('--template');
      const r2 = await iqp(['init', 'x', '--template', 'deck'], { cwd, env });
      expect(r2.code).toBe(2);
      expect(r2.stderr).toContain('IQP_E_MISSING_OPTION');
      expect(r2.stderr).toContain('--id');
    }
    expect(listTree(cwd)).toEqual([]);
  });

  it.each([
    [['--template', 'podcast', '--yes'], 'IQP_E_TEMPLATE_UNKNOWN', 2],
    [['--template', 'deck', '--id', 'Bad Id!', '--yes'], 'IQP_E_INVALID_ID', 2],
    [['--template', 'deck', '--id', 'ok.id', '--lang', 'english!!', '--yes'], 'IQP_E_MANIFEST_LANGUAGE', 1],
    [['--template', 'deck', '--yes', '--name', ' '], 'IQP_E_USAGE', 2],
  ])('rejects %j with %s and writes nothing', async (flags, code, exit) => {
    const cwd = tempDir();
    const r = await iqp(['init', 'out', ...flags, '--json'], { cwd });
    expect(r.code).toBe(exit);
    expect(r.json().error.code).toBe(code);
    expect(existsSync(join(cwd, 'out'))).toBe(false);
    expect(listTree(cwd)).toEqual([]);
  });

  it('refuses a non-empty folder unless --force, and keeps other files with --force', async () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, 'busy'));
    writeFileSync(join(cwd, 'busy', 'notes.txt'), 'mine');
    const r = await iqp(['init', 'busy', '--template', 'deck', '--yes', '--json'], { cwd });
    expect(r.code).toBe(2);
    expect(r.json().error.code).toBe('IQP_E_TARGET_NOT_EMPTY');
    expect(listTree(join(cwd, 'busy'))).toEqual(['notes.txt']);
    const forced = await iqp(['init', 'busy', '--template', 'deck', '--yes', '--force'], { cwd });
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'busy', 'notes.txt'), 'utf8')).toBe('mine');
    expect(statSync(join(cwd, 'busy', 'schema.sql')).isFile()).toBe(true);
  });
});
