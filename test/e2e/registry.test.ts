/**
 * The registry commands end to end: the real bin/iqp against a real `iqp server start` on
 * 127.0.0.1 with a random port and a temp data dir. Nothing is mocked.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, EPOCH, iqp, listTree, type RegistryProcess, type RunResult, startRegistry, tempDir } from './helpers.js';

const ID = 'demo.pack';
let work: string;
let server: RegistryProcess;
let adminToken: string;
let publisherToken: string;
/** Every stdout and stderr any command printed, to check that no token ever shows up. */
const printed: string[] = [];

const packFile = (version: string) => `${ID}-${version}.iqp`;

/** iqp against the test registry, with the admin token in IQP_TOKEN unless `env` says otherwise. */
async function run(args: string[], env: Record<string, string | undefined> = {}, cwd = work): Promise<RunResult> {
  const r = await iqp(args, { cwd, env: { IQP_REGISTRY: server.url, IQP_TOKEN: adminToken, IQP_RETRY_BASE_MS: '1', ...env } });
  printed.push(r.stdout, r.stderr);
  return r;
}

async function build(version: string, epoch: string, out: string): Promise<void> {
  const file = join(work, 'src', 'iqp.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), version }, null, 2));
  const r = await iqp(['build', 'src', '--key', 'signing.key', '--out', out], { cwd: work, env: { SOURCE_DATE_EPOCH: epoch } });
  expect(r.code, r.stderr).toBe(0);
}

async function getJson(path: string): Promise<any> {
  const res = await fetch(`${server.url}${path}`);
  expect(res.status, path).toBe(200);
  return res.json();
}

beforeAll(async () => {
  work = tempDir('iqp-registry-');
  server = await startRegistry({ cwd: work, data: join(work, 'data') });
  for (const role of ['admin', 'publisher'] as const) {
    const r = await iqp(['token', 'create', '--role', role, '--name', `e2e ${role}`, '--data', 'data', '--json'], { cwd: work });
    expect(r.code, r.stderr).toBe(0);
    if (role === 'admin') adminToken = r.json().token;
    else publisherToken = r.json().token;
  }
  for (const name of ['signing', 'stranger']) expect((await iqp(['keygen', '--out', name, '--no-passphrase'], { cwd: work })).code).toBe(0);
  expect((await iqp(['init', 'src', '--template', 'translation', '--id', ID, '-y'], { cwd: work })).code).toBe(0);
  await build('1.0.0', EPOCH, packFile('1.0.0'));
  // Same version, other bytes: a different build time.
  await build('1.0.0', String(Number(EPOCH) + 60), 'other-1.0.0.iqp');
  await build('1.1.0', EPOCH, packFile('1.1.0'));
  await build('2.0.0', EPOCH, packFile('2.0.0'));
});

afterAll(async () => {
  const exit = await server?.stop();
  expect(exit?.code).toBe(0);
});

describe('iqp keys', () => {
  it('needs an admin token to add a key: a publisher token gets IQP_E_FORBIDDEN', async () => {
    const r = await run(['keys', 'add', 'signing.pub', '--json'], { IQP_TOKEN: publisherToken });
    expect(r.code).toBe(3);
    expect(r.json().error.code).toBe('IQP_E_FORBIDDEN');
    expect((await getJson('/v1/keys')).keys).toEqual([]);
  });

  it('adds a key once, lists it, and adds, lists and removes another', async () => {
    const added = await run(['keys', 'add', 'signing.pub', '--name', 'content team', '--json']);
    expect(added.code, added.stderr).toBe(0);
    expect(added.json()).toMatchObject({ status: 'created', key: { name: 'content team' } });
    const keyId = added.json().key.key_id;
    expect((await run(['keys', 'add', 'signing.pub'])).stdout).toContain(`Key ${keyId} (content team) was already registered.`);

    const stranger = (await run(['keys', 'add', 'stranger.pub', '--purpose', 'release', '--json'])).json().key.key_id;
    const listed = await run(['keys', 'list', '--json']);
    const purposes = Object.fromEntries(listed.json().keys.map((k: { key_id: string; purpose: string }) => [k.key_id, k.purpose]));
    expect(purposes).toEqual({ [keyId]: 'pack', [stranger]: 'release' });
    // Without a token, list reads the public endpoint.
    const open = await run(['keys', 'list'], { IQP_TOKEN: undefined });
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout).toContain(`${keyId}  pack     content team`);
    const removed = await run(['keys', 'remove', stranger.toLowerCase()]);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await getJson('/v1/keys')).keys.map((k: { key_id: string }) => k.key_id)).toEqual([keyId]);
    const again = await run(['keys', 'remove', stranger, '--json']);
    expect(again.code).toBe(3);
    expect(again.json().error.code).toBe('IQP_E_NOT_FOUND');
  });
});

describe('iqp publish', () => {
  it('publishes (201), accepts the identical bytes again (200), and refuses other bytes for the same version (409)', async () => {
    const first = await run(['publish', packFile('1.0.0'), '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ ok: true, packs: [{ ok: true, status: 'published', package_id: ID, version: '1.0.0' }] });

    const again = await run(['publish', packFile('1.0.0')]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^already published \(identical\)  demo\.pack@1\.0\.0/);

    const other = await run(['publish', 'other-1.0.0.iqp', '--json']);
    expect(other.code).toBe(3);
    expect(other.json()).toMatchObject({ ok: false, packs: [{ ok: false, status: 'failed', error: { code: 'IQP_E_VERSION_EXISTS' } }] });
    const human = await run(['publish', 'other-1.0.0.iqp']);
    expect(human.code).toBe(3);
    expect(human.stderr).toContain('error IQP_E_VERSION_EXISTS');
  });

  it('publishes the rest when one pack fails, lists every result, and exits with the first failure', async () => {
    const r = await run(['publish', 'missing.iqp', packFile('1.1.0'), packFile('2.0.0'), '--json']);
    expect(r.code).toBe(2);
    const packs = r.json().packs;
    expect(packs.map((p: { status: string }) => p.status)).toEqual(['failed', 'published', 'published']);
    expect(packs[0].error.code).toBe('IQP_E_FILE_NOT_FOUND');
  });

  it('lets apps find the packs: /v1/packs/available and the manifest', async () => {
    const available = await getJson('/v1/packs/available?app_version=1.0.0');
    expect(available.packs.map((p: { package_id: string; version: string }) => `${p.package_id}@${p.version}`)).toEqual([`${ID}@2.0.0`]);
    expect((await getJson('/v1/packs/available?app_version=0.9.0')).packs).toEqual([]);
    const manifest = await getJson(`/v1/packs/${ID}/1.0.0/manifest`);
    const local = readFileSync(join(work, packFile('1.0.0')));
    expect(manifest).toMatchObject({ package_id: ID, version: '1.0.0', size_bytes: local.length, status: 'published' });
  });
});

describe('iqp pull', () => {
  it('downloads, checks and verifies against a pinned key, then verifies again with iqp verify', async () => {
    const r = await run(['pull', `${ID}@1.0.0`, '--out', 'pulled', '--pubkey', 'signing.pub', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, version: '1.0.0', trust: 'pinned', resumed_from: 0, restarted: false });
    expect(listTree(join(work, 'pulled'))).toEqual([packFile('1.0.0')]);
    expect(readFileSync(join(work, 'pulled', packFile('1.0.0'))).equals(readFileSync(join(work, packFile('1.0.0'))))).toBe(true);
    const verify = await run(['verify', join('pulled', packFile('1.0.0')), '--pubkey', 'signing.pub']);
    expect(verify.code, verify.stderr).toBe(0);
  });

  it('takes the newest published version when none is named, trusting the registry’s keys when none are pinned', async () => {
    const r = await run(['pull', ID, '--out', 'latest']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Pulled ${ID}@2.0.0`);
    expect(r.stdout).toContain('registry’s publisher keys from GET /v1/keys');
    const ranged = await run(['pull', `${ID}@^1`, '--out', 'latest', '--json']);
    expect(ranged.json().version).toBe('1.1.0');
  });

  it('resumes from a partial file holding the first bytes of the pack', async () => {
    const out = join(work, 'resume');
    const whole = readFileSync(join(work, packFile('1.0.0')));
    await run(['pull', `${ID}@1.0.0`, '--out', 'resume', '--json']); // creates the folder
    rmSync(join(out, packFile('1.0.0'))); // a pack already in place is not downloaded again
    writeFileSync(join(out, `.${packFile('1.0.0')}.part`), whole.subarray(0, 1000));
    const r = await run(['pull', `${ID}@1.0.0`, '--out', 'resume', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ resumed_from: 1000, restarted: false });
    expect(listTree(out)).toEqual([packFile('1.0.0')]);
    expect(readFileSync(join(out, packFile('1.0.0'))).equals(whole)).toBe(true);
  });

  it('downloads again from zero when the partial file is corrupt, leaving only a good pack', async () => {
    const out = join(work, 'corrupt');
    const whole = readFileSync(join(work, packFile('1.0.0')));
    await run(['pull', `${ID}@1.1.0`, '--out', 'corrupt']);
    writeFileSync(join(out, `.${packFile('1.0.0')}.part`), Buffer.alloc(1500, 0x55));
    const r = await run(['pull', `${ID}@1.0.0`, '--out', 'corrupt']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Resuming from byte 1500');
    expect(r.stderr).toContain('downloading it again from the start');
    expect(r.stdout).toContain('did not fit and was downloaded again');
    expect(listTree(out)).toEqual([packFile('1.0.0'), packFile('1.1.0')]);
    expect(readFileSync(join(out, packFile('1.0.0'))).equals(whole)).toBe(true);
  });

  it('refuses a pack signed by a key other than the pinned one: IQP_E_SIG_UNTRUSTED_KEY, nothing written', async () => {
    const r = await run(['pull', `${ID}@1.0.0`, '--out', 'untrusted', '--pubkey', 'stranger.pub', '--json']);
    expect(r.code).toBe(1);
    expect(r.json().error.code).toBe('IQP_E_SIG_UNTRUSTED_KEY');
    expect(existsSync(join(work, 'untrusted')) ? listTree(join(work, 'untrusted')) : []).toEqual([]);
  });

  it('deletes the download and fails when the registry serves bytes that do not match the manifest', async () => {
    const sha = (await getJson(`/v1/packs/${ID}/2.0.0/manifest`)).sha256 as string;
    const blob = join(work, 'data', 'blobs', 'sha256', sha.slice(0, 2), sha);
    const good = readFileSync(blob);
    const bad = Buffer.from(good);
    bad[bad.length - 10] = bad[bad.length - 10]! ^ 0xff;
    writeFileSync(blob, bad);
    try {
      const r = await run(['pull', `${ID}@2.0.0`, '--out', 'damaged', '--json']);
      expect(r.code).toBe(1);
      expect(r.json().error.code).toBe('IQP_E_DOWNLOAD_MISMATCH');
      expect(listTree(join(work, 'damaged'))).toEqual([]);
    } finally {
      writeFileSync(blob, good);
    }
  });

  it('says IQP_E_NOT_FOUND for an unknown pack or version', async () => {
    for (const ref of ['no.such.pack', `${ID}@9.9.9`, `${ID}@>5`]) {
      const r = await run(['pull', ref, '--out', 'none', '--json']);
      expect(r.code, ref).toBe(3);
      expect(r.json().error.code, ref).toBe('IQP_E_NOT_FOUND');
    }
  });
});

describe('iqp deprecate', () => {
  it('deprecates every version a range matches, with a publisher token, and undoes it', async () => {
    const r = await run(['deprecate', `${ID}@<2.0.0`, '--message', 'Use 2.x: corrected footnotes', '--json'], { IQP_TOKEN: publisherToken });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().versions).toEqual([
      { version: '1.1.0', status: 'deprecated', deprecated_message: 'Use 2.x: corrected footnotes', changed: true },
      { version: '1.0.0', status: 'deprecated', deprecated_message: 'Use 2.x: corrected footnotes', changed: true },
    ]);
    const listed = (await getJson(`/v1/packs/${ID}`)).versions.map((v: { version: string; status: string }) => `${v.version}:${v.status}`);
    expect(listed).toEqual(['2.0.0:published', '1.1.0:deprecated', '1.0.0:deprecated']);
    // A deprecated version is still pulled when named exactly, with a warning.
    const pulled = await run(['pull', `${ID}@1.0.0`, '--out', 'deprecated']);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stderr).toContain('is deprecated: Use 2.x');
    expect((await run(['pull', `${ID}@^1`, '--out', 'deprecated', '--json'])).json().error.code).toBe('IQP_E_NOT_FOUND');

    const undo = await run(['deprecate', `${ID}@^1.0.0`, '--undo']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(undo.stdout).toContain('Un-deprecated demo.pack@^1.0.0: 2 versions');
    const viaEmpty = await run(['deprecate', `${ID}@1.0.0`, '--message', '', '--json']);
    expect(viaEmpty.json().versions).toEqual([{ version: '1.0.0', status: 'published', deprecated_message: null, changed: false }]);
    expect((await getJson(`/v1/packs/${ID}`)).versions.every((v: { status: string }) => v.status === 'published')).toBe(true);
  });

  it('answers a range that matches nothing with IQP_E_NOT_FOUND, and a bad range with a usage error', async () => {
    const none = await run(['deprecate', `${ID}@>=3`, '--message', 'x', '--json']);
    expect(none.code).toBe(3);
    expect(none.json().error.code).toBe('IQP_E_NOT_FOUND');
    const bad = await run(['deprecate', `${ID}@not-a-range`, '--message', 'x', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.json().error.code).toBe('IQP_E_INVALID_VERSION');
    const noMessage = await run(['deprecate', `${ID}@1.0.0`, '--json']);
    expect(noMessage.code).toBe(2);
    expect(noMessage.json().error).toMatchObject({ code: 'IQP_E_MISSING_OPTION', details: { flag: '--message' } });
  });
});

describe('iqp keys remove, a key still in use', () => {
  it('refuses to remove a key that signs packs apps are offered (IQP_E_KEY_IN_USE) unless forced; the key stays listed', async () => {
    const keyId = /minisign public key ([0-9A-F]{16})/.exec(readFileSync(join(work, 'signing.pub'), 'utf8'))![1]!;
    await run(['keys', 'add', 'signing.pub']);
    expect((await run(['publish', packFile('2.0.0')])).code).toBe(0); // published now, or already (identical)
    const r = await run(['keys', 'remove', keyId, '--json']);
    expect(r.code).toBe(3);
    expect(r.json().error.code).toBe('IQP_E_KEY_IN_USE');
    expect(r.json().error.message).toContain(`${ID}@`);
    const listed = (await getJson('/v1/keys')).keys.map((k: { key_id: string }) => k.key_id);
    expect(listed).toContain(keyId);
  });
});

describe('tokens and failures', () => {
  it('stops before any request without a token (IQP_E_TOKEN_REQUIRED, exit 2)', async () => {
    // The registry URL is a closed port: any request would end in IQP_E_NETWORK instead.
    const registry = `http://127.0.0.1:${await closedPort()}`;
    for (const args of [['publish', packFile('1.0.0')], ['deprecate', `${ID}@1.0.0`, '-m', 'x'], ['keys', 'add', 'signing.pub'], ['keys', 'remove', '0123456789ABCDEF']]) {
      const r = await run([...args, '--registry', registry, '--json'], { IQP_TOKEN: undefined });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json().error.code, args.join(' ')).toBe('IQP_E_TOKEN_REQUIRED');
    }
    const noRegistry = await run(['pull', ID, '--json'], { IQP_REGISTRY: undefined });
    expect(noRegistry.code).toBe(2);
    expect(noRegistry.json().error.code).toBe('IQP_E_REGISTRY_REQUIRED');
  });

  it('answers an unknown token with IQP_E_UNAUTHORIZED, exit 3', async () => {
    const r = await run(['publish', packFile('1.0.0'), '--json'], { IQP_TOKEN: 'iqp_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    expect(r.code).toBe(3);
    expect(r.json().packs[0].error.code).toBe('IQP_E_UNAUTHORIZED');
    const keys = await run(['keys', 'list', '--json'], { IQP_TOKEN: 'not-a-token' });
    expect(keys.code).toBe(3);
    expect(keys.json().error.code).toBe('IQP_E_UNAUTHORIZED');
  });

  it('retries an unreachable registry, then fails with IQP_E_NETWORK, exit 3', async () => {
    const registry = `http://127.0.0.1:${await closedPort()}`;
    const r = await run(['pull', ID, '--registry', registry, '--out', 'unreachable']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error IQP_E_NETWORK');
    expect(r.stderr).toContain('ECONNREFUSED');
    expect(r.stderr.match(/retrying in/g)).toHaveLength(4);
    expect(r.stderr).toContain('(5 attempts)');
    const publish = await run(['publish', packFile('1.0.0'), '--registry', registry, '--json']);
    expect(publish.code).toBe(3);
    expect(publish.json().packs[0].error).toMatchObject({ code: 'IQP_E_NETWORK', details: { errno: 'ECONNREFUSED', attempts: 5 } });
    expect(existsSync(join(work, 'unreachable'))).toBe(false);
  });

  it('never prints a token: not in results, errors, --json, debug lines, nor when given as a flag', async () => {
    await run(['publish', packFile('1.0.0'), '--json'], { IQP_DEBUG: '1' });
    await run(['keys', 'list'], { IQP_DEBUG: '1' });
    await run(['keys', 'list', '--token', publisherToken, '--json'], { IQP_DEBUG: '1', IQP_TOKEN: undefined });
    await run(['deprecate', `${ID}@1.0.0`, '--undo', '--token', publisherToken], { IQP_DEBUG: '1', IQP_TOKEN: undefined });
    const debug = printed.join('\n');
    // The secret is everything after iqp_<12 hex>_ (it may itself hold underscores).
    const secret = (token: string): string => token.slice('iqp_'.length + 12 + 1);
    expect(secret(adminToken)).toHaveLength(43);
    expect(debug).toContain('debug: PUT http://127.0.0.1:');
    expect(debug).not.toContain(adminToken);
    expect(debug).not.toContain(publisherToken);
    expect(debug).not.toContain(secret(adminToken));
    expect(debug).not.toContain(secret(publisherToken));
    expect(server.stderr()).not.toContain(secret(adminToken));
  });
});

describe('no stray files', () => {
  it('leaves no .part files or temp files behind after successful pulls', () => {
    const leftovers = ['pulled', 'latest', 'resume', 'corrupt', 'deprecated'].flatMap((d) => readdirSync(join(work, d)).filter((f) => f.startsWith('.')));
    expect(leftovers).toEqual([]);
  });
});
