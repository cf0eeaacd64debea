/**
 * One precedence rule for every setting, through the real binary: flag > IQP_* > config file >
 * default. Paths resolve against the working directory (flag, environment) or the config file's
 * folder (file). Bad values name their source: a flag is a usage error, a variable or key a
 * configuration error, and nothing is created.
 */
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EPOCH, iqp, listTree, tempDir, TEMPLATES } from './helpers.js';

type ErrorDoc = { error: { code: string; message: string } };

describe('settings precedence', () => {
  it('max_line_bytes: --max-line-bytes over IQP_MAX_LINE_BYTES over the config file over the default', async () => {
    const dir = tempDir('iqp-settings-');
    cpSync(join(TEMPLATES, 'translation'), join(dir, 'src'), { recursive: true });
    writeFileSync(join(dir, 'iqp.config.json'), JSON.stringify({ max_line_bytes: 11 }));
    const build = (env: Record<string, string>, flags: string[] = []) =>
      iqp(['build', 'src', '--unsigned', '-o', 'out.iqp', '--json', ...flags], { cwd: dir, env: { HOME: dir, SOURCE_DATE_EPOCH: EPOCH, ...env } });

    const longerThan = async (r: Awaited<ReturnType<typeof build>>) => {
      expect(r.code, r.stdout).not.toBe(0);
      return /longer than (\d+) bytes/.exec(r.json<ErrorDoc>().error.message)?.[1];
    };
    expect(await longerThan(await build({}))).toBe('11');
    expect(await longerThan(await build({ IQP_MAX_LINE_BYTES: '12' }))).toBe('12');
    expect(await longerThan(await build({ IQP_MAX_LINE_BYTES: '12' }, ['--max-line-bytes', '13']))).toBe('13');
    expect(existsSync(join(dir, 'out.iqp')), 'no pack from a failed build').toBe(false);
    // The flag wins over a file value that would fail; without any, the default (16 MiB) builds it.
    expect((await build({}, ['--max-line-bytes', '1048576'])).code).toBe(0);
    writeFileSync(join(dir, 'iqp.config.json'), '{}');
    expect((await build({})).code).toBe(0);
  });

  it('data_dir: flag and IQP_DATA resolve against the working directory, the file against its folder', async () => {
    const dir = tempDir('iqp-settings-');
    mkdirSync(join(dir, 'conf'));
    writeFileSync(join(dir, 'conf', 'iqp.json'), JSON.stringify({ data_dir: 'from-file' }));
    const migrate = async (env: Record<string, string>, flags: string[] = []) => {
      const r = await iqp(['server', 'migrate', '--json', ...flags], { cwd: dir, env: { HOME: dir, ...env } });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      return r.json<{ data_dir: string }>().data_dir;
    };
    expect(await migrate({})).toBe(join(dir, 'iqp-data'));
    expect(await migrate({ IQP_CONFIG: 'conf/iqp.json' })).toBe(join(dir, 'conf', 'from-file'));
    expect(await migrate({ IQP_CONFIG: 'conf/iqp.json', IQP_DATA: 'from-env' })).toBe(join(dir, 'from-env'));
    expect(await migrate({ IQP_CONFIG: 'conf/iqp.json', IQP_DATA: 'from-env' }, ['--data', 'from-flag'])).toBe(join(dir, 'from-flag'));
  });

  it('trust_proxy: a bad value names the flag (IQP_E_USAGE), the variable or the key (IQP_E_CONFIG), and no data directory is made', async () => {
    for (const [env, file, flags, code, named] of [
      [{}, {}, ['--trust-proxy', 'true'], 'IQP_E_USAGE', '--trust-proxy'],
      [{ IQP_TRUST_PROXY: '10.0.0.0/33' }, {}, [], 'IQP_E_CONFIG', 'IQP_TRUST_PROXY'],
      [{}, { trust_proxy: 'everyone' }, [], 'IQP_E_CONFIG', '"trust_proxy"'],
      [{ IQP_PORT: '0x1F90' }, {}, [], 'IQP_E_CONFIG', 'IQP_PORT'],
      [{}, { port: '08686' }, [], 'IQP_E_CONFIG', '"port"'],
      [{}, {}, ['--port', '1e3'], 'IQP_E_USAGE', '--port'],
    ] as const) {
      const dir = tempDir('iqp-settings-');
      writeFileSync(join(dir, 'iqp.config.json'), JSON.stringify(file));
      const r = await iqp(['server', 'start', '--data', 'data', '--json', ...flags], { cwd: dir, env: { HOME: dir, ...env }, timeoutMs: 20_000 });
      const label = `${JSON.stringify(env)} ${JSON.stringify(file)} ${flags.join(' ')}`;
      expect(r.code, label).toBe(2);
      const error = r.json<ErrorDoc>().error;
      expect(error.code, label).toBe(code);
      expect(error.message, label).toContain(named);
      expect(listTree(dir), label).toEqual(['iqp.config.json']);
    }
  });
});
