/**
 * The hint under each refusal a user is likely to meet names the fix that works for the command
 * they ran, not the generic hint of the error code (publish has no --allow-unsigned; an untrusted
 * key on publish is fixed with `iqp keys add`, not --pubkey; a port in use is not a disk problem).
 * Each case runs the real binary against a real registry and asserts the code, the exit status,
 * the hint, and that nothing was written.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG, type ErrorCode } from '../../src/errors.js';
import { closedPort as freePort, iqp, listTree, tempDir } from '../e2e/helpers.js';
import { buildTemplatePack, call, newKey, startRegistry, type TestRegistry } from '../server/helpers.js';

interface World {
  registry: TestRegistry;
  keyless: TestRegistry;
  dir: string;
  signed: string;
  signedRef: string;
  keyId: string;
  foreign: string;
  unsigned: string;
  source: string;
  tokenData: string;
  pub: string;
  otherPub: string;
}

let w: World;

beforeAll(async () => {
  const key = newKey();
  const other = newKey();
  const registry = await startRegistry({ keys: [key] });
  const keyless = await startRegistry({});
  const dir = tempDir('iqp-hints-');
  const built = await buildTemplatePack(dir, key, { authored: { version: '1.0.0' } });
  const signed = built.path;
  const foreign = (await buildTemplatePack(dir, other, { authored: { version: '2.0.0' } })).path;
  const ok = async (args: string[], env: Record<string, string> = {}) => {
    const r = await iqp(args, { cwd: dir, env });
    expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
    return r;
  };
  await ok(['init', 'src', '--template', 'translation', '--yes']);
  await ok(['build', 'src', '--unsigned', '--out', 'unsigned.iqp']);
  await ok(['keygen', '--out', 'enc'], { IQP_PASSPHRASE: 'the right one' });
  await ok(['keygen', '--out', 'other', '--no-passphrase']);
  await ok(['server', 'migrate', '--data', 'token-data']);
  await ok(['token', 'create', '--role', 'admin', '--data', 'token-data']);
  const { cpSync, readFileSync, writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'key.pub'), key.publicKeyFile);
  // Sources each with one mistake.
  const broken = (name: string, change: (source: string) => void) => {
    cpSync(join(dir, 'src'), join(dir, name), { recursive: true });
    change(join(dir, name));
  };
  broken('stray', (source) => writeFileSync(join(source, 'data', 'notes.txt'), 'remember to check the footnotes\n'));
  broken('twice', (source) => writeFileSync(join(source, 'data', 'surahs.jsonl'), ''));
  broken('header', (source) => writeFileSync(join(source, 'data', 'surahs.csv'), readFileSync(join(source, 'data', 'surahs.csv'), 'utf8').replace('name_arabic', 'name_arabik')));
  broken('json', (source) => writeFileSync(join(source, 'iqp.json'), readFileSync(join(source, 'iqp.json'), 'utf8').replace('{', '{,')));
  // Both surahs are from Makkah.
  broken('unique', (source) => writeFileSync(join(source, 'schema.sql'), `${readFileSync(join(source, 'schema.sql'), 'utf8')}\nCREATE UNIQUE INDEX one_per_place ON surahs (revelation_place);\n`));
  w = { registry, keyless, dir, signed, signedRef: `${built.package_id}@${built.version}`, keyId: key.keyId, foreign, unsigned: join(dir, 'unsigned.iqp'), source: join(dir, 'src'), tokenData: join(dir, 'token-data'), pub: join(dir, 'key.pub'), otherPub: join(dir, 'other.pub') };
  const first = await iqp(['publish', signed, '--registry', registry.url, '--json'], { cwd: dir, env: { IQP_TOKEN: registry.publisher } });
  expect(first.code, first.stdout).toBe(0);
}, 120_000);

afterAll(async () => {
  await w?.registry.close();
  await w?.keyless.close();
});

interface Case {
  readonly name: string;
  readonly args: () => string[];
  readonly env?: () => Record<string, string>;
  readonly code: ErrorCode;
  /** The hint must say this… */
  readonly hint: RegExp;
  /** …and must not say this (the generic hint's wrong advice). */
  readonly not?: RegExp;
  /** Too slow to run twice (minisign's scrypt): the --json run only. */
  readonly once?: boolean;
}

const CASES: Case[] = [
  {
    name: 'publish an unsigned pack',
    args: () => ['publish', w.unsigned, '--registry', w.registry.url],
    env: () => ({ IQP_TOKEN: w.registry.publisher }),
    code: 'IQP_E_PACK_UNSIGNED',
    hint: /iqp build .*--key/,
    not: /--allow-unsigned/,
  },
  {
    name: 'publish a pack signed by a key the registry does not know',
    args: () => ['publish', w.foreign, '--registry', w.registry.url],
    env: () => ({ IQP_TOKEN: w.registry.publisher }),
    code: 'IQP_E_SIG_UNTRUSTED_KEY',
    hint: /iqp keys add/,
    not: /--pubkey/,
  },
  {
    name: 'publish to a registry with no publisher keys',
    args: () => ['publish', w.signed, '--registry', w.keyless.url],
    env: () => ({ IQP_TOKEN: w.keyless.publisher }),
    code: 'IQP_E_NO_PUBLISHER_KEYS',
    hint: /iqp keys add/,
  },
  {
    name: 'publish without a token',
    args: () => ['publish', w.signed, '--registry', w.registry.url],
    code: 'IQP_E_TOKEN_REQUIRED',
    hint: /IQP_TOKEN/,
  },
  {
    name: 'publish without a registry',
    args: () => ['publish', w.signed],
    env: () => ({ IQP_TOKEN: w.registry.publisher }),
    code: 'IQP_E_REGISTRY_REQUIRED',
    hint: /--registry|IQP_REGISTRY/,
  },
  {
    name: 'publish with a token the registry does not know',
    args: () => ['publish', w.signed, '--registry', w.registry.url],
    env: () => ({ IQP_TOKEN: `iqp_000000000000_${'A'.repeat(43)}` }),
    code: 'IQP_E_UNAUTHORIZED',
    hint: /iqp token create|IQP_TOKEN/,
  },
  {
    name: 'keys add with a publisher token',
    args: () => ['keys', 'add', w.otherPub, '--registry', w.registry.url],
    env: () => ({ IQP_TOKEN: w.registry.publisher }),
    code: 'IQP_E_FORBIDDEN',
    hint: /admin/,
  },
  {
    name: 'keys remove a key the registry does not have',
    args: () => ['keys', 'remove', '0123456789ABCDEF', '--registry', w.registry.url],
    env: () => ({ IQP_TOKEN: w.registry.admin }),
    code: 'IQP_E_NOT_FOUND',
    hint: /iqp keys list/,
    not: /pack id/,
  },
  {
    name: 'keys remove a key that signs the newest version apps are offered',
    args: () => ['keys', 'remove', w.keyId, '--registry', w.registry.url],
    env: () => ({ IQP_TOKEN: w.registry.admin }),
    code: 'IQP_E_KEY_IN_USE',
    hint: /iqp deprecate.*--force/,
  },
  {
    name: 'pull a pack the registry does not have',
    args: () => ['pull', 'no.such.pack', '--registry', w.registry.url],
    code: 'IQP_E_NOT_FOUND',
    hint: /pack id/,
  },
  {
    name: 'pull with a pinned key that did not sign the pack',
    args: () => ['pull', w.signedRef, '--registry', w.registry.url, '--pubkey', w.otherPub],
    code: 'IQP_E_SIG_UNTRUSTED_KEY',
    hint: /--pubkey/,
  },
  {
    name: 'pull from a registry nobody listens on',
    args: () => ['pull', w.signedRef, '--registry', `http://127.0.0.1:${closedPort}`],
    env: () => ({ IQP_RETRY_BASE_MS: '1' }),
    code: 'IQP_E_NETWORK',
    hint: /URL|connection/,
  },
  {
    name: 'deprecate a pack the registry does not have',
    args: () => ['deprecate', 'no.such.pack@1.0.0', '--message', 'x', '--registry', w.registry.url],
    env: () => ({ IQP_TOKEN: w.registry.publisher }),
    code: 'IQP_E_NOT_FOUND',
    hint: /pack id|iqp pull|versions/,
  },
  {
    name: 'verify an unsigned pack',
    args: () => ['verify', w.unsigned, '--pubkey', w.pub],
    code: 'IQP_E_PACK_UNSIGNED',
    hint: /--allow-unsigned/,
  },
  {
    name: 'build with the wrong passphrase',
    args: () => ['build', w.source, '--key', join(w.dir, 'enc.key'), '--out', 'x.iqp'],
    env: () => ({ IQP_PASSPHRASE: 'a wrong one' }),
    code: 'IQP_E_KEY_PASSPHRASE',
    hint: /IQP_PASSPHRASE/,
    once: true,
  },
  {
    name: 'revoke a token that does not exist',
    args: () => ['token', 'revoke', 'zzz', '--data', w.tokenData],
    code: 'IQP_E_NOT_FOUND',
    hint: /iqp token list/,
    not: /pack/,
  },
  {
    name: 'start a registry on a port in use',
    args: () => ['server', 'start', '--host', '127.0.0.1', '--port', new URL(w.registry.url).port, '--data', join(w.dir, 'second-data')],
    code: 'IQP_E_IO',
    hint: /--port/,
    not: /disk/,
  },
  {
    name: 'build a source with a stray file in data/',
    args: () => ['build', join(w.dir, 'stray'), '--unsigned'],
    code: 'IQP_E_SOURCE_CONFIG',
    hint: /data\/<table>\.jsonl/,
    not: /field/,
  },
  {
    name: 'build a source with two data files for one table',
    args: () => ['build', join(w.dir, 'twice'), '--unsigned'],
    code: 'IQP_E_SOURCE_CONFIG',
    hint: /one data file per table/,
    not: /field/,
  },
  {
    name: 'build a source whose CSV header names a column the table lacks',
    args: () => ['build', join(w.dir, 'header'), '--unsigned'],
    code: 'IQP_E_DATA_ROW',
    hint: /header/,
    not: /Fix the row/,
  },
  {
    name: 'build a source whose iqp.json is not JSON',
    args: () => ['build', join(w.dir, 'json'), '--unsigned'],
    code: 'IQP_E_SOURCE_CONFIG',
    hint: /message names/,
    not: /named field/,
  },
  {
    name: 'build a source whose UNIQUE index the rows do not fit',
    args: () => ['build', join(w.dir, 'unique'), '--unsigned'],
    code: 'IQP_E_DATA_ROW',
    hint: /UNIQUE index/,
    not: /Fix the row at the line given/,
  },
  {
    name: 'show a release the registry does not have',
    args: () => ['release', 'show', '99', '--registry', w.registry.url],
    env: () => ({ IQP_TOKEN: w.registry.publisher }),
    code: 'IQP_E_NOT_FOUND',
    hint: /iqp release list/,
    not: /pack id/,
  },
  {
    name: 'ask for the latest release for an app version nothing is published for',
    args: () => ['release', 'latest', '--app-version', '1.4.0', '--registry', w.registry.url],
    code: 'IQP_E_NOT_FOUND',
    hint: /--channel.*--app-version/,
    not: /pack id/,
  },
  {
    name: 'pull the latest release for an app version nothing is published for',
    args: () => ['pull', '--release', 'latest', '--app-version', '1.4.0', '--release-key', w.pub, '--registry', w.registry.url],
    code: 'IQP_E_NOT_FOUND',
    hint: /--channel.*--app-version/,
    not: /pack id/,
  },
  {
    name: 'publish to the registry’s /v1 URL instead of its root',
    args: () => ['publish', w.signed, '--registry', `${w.registry.url}/v1`],
    env: () => ({ IQP_TOKEN: w.registry.publisher }),
    code: 'IQP_E_NOT_FOUND',
    hint: /root URL/,
    not: /pack id/,
  },
  {
    name: 'keys remove through the registry’s /v1 URL (the command’s own hint does not hide the URL’s)',
    args: () => ['keys', 'remove', '0123456789ABCDEF', '--registry', `${w.registry.url}/v1/`],
    env: () => ({ IQP_TOKEN: w.registry.admin }),
    code: 'IQP_E_NOT_FOUND',
    hint: /root URL/,
    not: /iqp keys list/,
  },
  {
    name: 'audit without a token',
    args: () => ['audit', '--registry', w.registry.url],
    code: 'IQP_E_TOKEN_REQUIRED',
    hint: /IQP_TOKEN/,
  },
];

let closedPort = 0;
beforeAll(async () => {
  closedPort = await freePort();
});

describe('the hint of each refusal a user is likely to meet', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const cwd = tempDir();
    const packsBefore = (await call(w.registry.url, '/v1/admin/keys', { token: w.registry.admin })).body.toString();
    const r = await iqp([...c.args(), '--json'], { cwd, env: c.env?.() ?? {}, timeoutMs: 60_000 });
    // publish tries every pack and reports each one's error in its entry.
    const doc = r.json();
    const err = doc.error ?? doc.packs?.find((p: { ok: boolean }) => !p.ok)?.error;
    expect(err.code, r.stdout).toBe(c.code);
    expect(r.code).toBe(CATALOG[c.code].exit);
    expect(r.stderr).toBe('');
    expect(err.hint).toMatch(c.hint);
    if (c.not) expect(err.hint).not.toMatch(c.not);
    expect(listTree(cwd), 'nothing written where it ran').toEqual([]);
    expect((await call(w.registry.url, '/v1/admin/keys', { token: w.registry.admin })).body.toString(), 'registry keys unchanged').toBe(packsBefore);
    if (c.once) return;
    // People see the same hint on stderr.
    const human = await iqp(c.args(), { cwd, env: c.env?.() ?? {}, timeoutMs: 60_000 });
    expect(human.stderr).toContain(`error ${c.code}: `);
    expect(human.stderr).toContain(`hint: ${err.hint}`);
  }, 120_000);

  it('left the registry with the one pack published at the start', async () => {
    const available = (await call(w.registry.url, '/v1/packs/available')).json<{ packs: { version: string }[] }>();
    expect(available.packs.map((p) => p.version)).toEqual(['1.0.0']);
    const tokens = await iqp(['token', 'list', '--data', w.tokenData, '--json'], { cwd: w.dir });
    expect(tokens.json().tokens.map((t: { revoked_at: string | null }) => t.revoked_at)).toEqual([null]);
  });
});
