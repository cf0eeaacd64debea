import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BIN, baseEnv, iqp, listTree, sh, tempDir } from './helpers.js';

describe('iqp command line', () => {
  it('prints help and version with exit 0', async () => {
    const cwd = tempDir();
    const help = await iqp(['--help'], { cwd });
    expect(help.code).toBe(0);
    for (const cmd of ['init', 'build', 'inspect', 'verify', 'keygen', 'demo']) expect(help.stdout).toContain(cmd);
    // demo's line says every part the demo runs, the sync part included.
    const demo = /^ {2}demo \[options\] +([\s\S]*?)\n {2}\S/m.exec(help.stdout)?.[1]?.replace(/\s+/g, ' ');
    expect(demo).toMatch(/keygen.*publish.*release.*auth plugin.*sync plugin: .*phone and tablet/);
    const version = await iqp(['--version'], { cwd });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    // -V answers without loading any command, and says the same.
    const short = await iqp(['-V'], { cwd });
    expect(short.code).toBe(0);
    expect(short.stdout).toBe(version.stdout);
    const sub = await iqp(['build', '--help'], { cwd });
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--unsigned');
  });

  it('answers usage mistakes with IQP_E_USAGE and exit 2, as JSON with --json', async () => {
    const cwd = tempDir();
    for (const args of [['frobnicate'], ['build', '--bogus'], ['verify'], ['build', '--level', '42', '--unsigned'], ['build', '--threads', '0', '--unsigned'], ['build', '--threads', 'two', '--unsigned']]) {
      const r = await iqp([...args, '--json'], { cwd });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json().error.code).toBe('IQP_E_USAGE');
    }
  });

  it('refuses IQP_THREADS that is not a thread count with IQP_E_CONFIG', async () => {
    const cwd = tempDir();
    for (const value of ['0', 'many', '65']) {
      const r = await iqp(['build', '--unsigned', '--json'], { cwd, env: { IQP_THREADS: value } });
      expect(r.code, value).toBe(2);
      expect(r.json().error, value).toMatchObject({ code: 'IQP_E_CONFIG' });
      expect(r.json().error.message).toMatch(/threads|IQP_THREADS/);
    }
    expect(listTree(cwd), 'nothing written').toEqual([]);
  });

  it('refuses a broken config file with IQP_E_CONFIG', async () => {
    const cwd = tempDir();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${cwd}/iqp.config.json`, '{"levle": 3}');
    const r = await iqp(['verify', 'x.iqp', '--json'], { cwd });
    expect(r.code).toBe(2);
    expect(r.json().error).toMatchObject({ code: 'IQP_E_CONFIG' });
    expect(r.json().error.message).toContain('levle');
  });

  it('demo runs keygen, init, build, inspect and verify on every template, then publishes, pulls and runs a release through a local registry, then an app account with the auth plugin, and its phone and tablet syncing through the sync plugin', async () => {
    const cwd = tempDir();
    const r = await iqp(['demo', '--dir', 'demo', '--json'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    expect(out.ok).toBe(true);
    expect(out.packs.map((p: { template: string }) => p.template)).toEqual(['translation', 'recitation', 'dataset', 'deck']);
    for (const p of out.packs) expect(p.signer_key_id).toBe(out.key_id);
    const files = listTree(`${cwd}/demo`);
    expect(files.filter((f) => f.endsWith('.iqp') && !f.includes('/'))).toHaveLength(4);
    expect(out.registry.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(out.registry.published.map((p: { status: string }) => p.status)).toEqual(['published', 'published', 'published', 'published']);
    expect(out.registry.available).toHaveLength(4);
    expect(out.registry.pulled).toMatchObject({ package_id: out.packs[0].package_id, trust: 'pinned', signer_key_id: out.key_id });
    // The release lifecycle: validation fails without the deck, then the release is signed, served to app 1.4.0 only, pulled and withdrawn.
    expect(out.registry.release).toMatchObject({ validation_failures: ['role_missing'], sequence: 1, latest_for_app: { '0.9.0': null, '1.4.0': out.registry.release.id }, latest_after_deprecation: null });
    expect(out.registry.release.pulled).toHaveLength(3);
    expect(files).toContain(`pulled/${out.packs[0].package_id}-${out.packs[0].version}.iqp`);
    const verify = await iqp(['verify', out.packs[0].path, '--pubkey', 'demo/demo-signing.pub'], { cwd });
    expect(verify.code).toBe(0);

    // App accounts, on the same registry with the auth plugin enabled, as the registry's own records tell it.
    const accounts = out.registry.accounts;
    expect(accounts).toMatchObject({ email_verified: true, refresh_rotated: true, refresh_after_sign_out: 'IQP_E_TOKEN_INVALID' });
    expect(accounts.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(JSON.parse(readFileSync(`${cwd}/demo/registry-data/server.json`, 'utf8')).plugins.auth).toMatchObject({ enabled: true, source: 'builtin' });
    const db = `${cwd}/demo/registry-data/registry.sqlite`;
    const query = (sql: string) => sh('sqlite3', ['-readonly', '-json', db, sql], cwd).stdout.trim();
    const rows = (sql: string) => JSON.parse(query(sql) || '[]') as Record<string, unknown>[];
    expect(rows(`SELECT email, email_verified FROM auth_users WHERE id = '${accounts.user_id}'`)).toEqual([{ email: accounts.email, email_verified: 1 }]);
    // The verification mail went to the outbox, and its code was spent (a used code is deleted, its link with it).
    const outbox = `${cwd}/demo/registry-data/plugins/auth/outbox`;
    const mails = listTree(outbox).map((f) => JSON.parse(readFileSync(`${outbox}/${f}`, 'utf8')) as { to: string; text: string });
    expect(mails.filter((m) => m.to === accounts.email && /code is \d{6}/.test(m.text))).toHaveLength(1);
    expect(rows('SELECT COUNT(*) AS n FROM auth_codes')).toEqual([{ n: 0 }]);
    // The demo's device: its first refresh token was used and replaced, then the session ended.
    const session = rows(`SELECT id, revoked_at_ms IS NOT NULL AS ended FROM auth_sessions WHERE device_id = '${accounts.device_id}'`);
    expect(session).toMatchObject([{ ended: 1 }]);
    expect(rows(`SELECT used_at_ms IS NOT NULL AS used, successor_id IS NOT NULL AS replaced FROM auth_refresh_tokens WHERE session_id = '${session[0]!['id']}' ORDER BY created_at_ms, parent_id IS NOT NULL`)).toEqual([
      { used: 1, replaced: 1 },
      { used: 0, replaced: 0 },
    ]);

    // Sync: the same user on a phone and a tablet, through the real sync client.
    const sync = accounts.sync;
    expect(sync).toMatchObject({ devices: ['phone', 'tablet'], tablet_received: 4, merged: { surah: 2, ayah: 256, note: 'Memorize by Friday' }, converged: true, entities: 4 });
    expect(sync.conflict).toMatchObject({ fields: ['theme'], resolution: 'loser' });
    expect(JSON.parse(readFileSync(`${cwd}/demo/registry-data/server.json`, 'utf8')).plugins.sync).toMatchObject({ enabled: true, source: 'builtin' });
    expect(rows('SELECT COUNT(*) AS n FROM sync_devices')).toEqual([{ n: 2 }]);
    expect(rows(`SELECT entity, entity_id, deleted FROM sync_rows WHERE user_id = '${accounts.user_id}' ORDER BY entity, entity_id`)).toEqual([
      { entity: 'bookmark', entity_id: '2-255', deleted: 0 },
      { entity: 'bookmark', entity_id: '36-1', deleted: 0 },
      { entity: 'progress', entity_id: 'quran', deleted: 0 },
      { entity: 'settings', entity_id: 'reader', deleted: 0 },
    ]);
    expect(rows("SELECT payload FROM sync_rows WHERE entity = 'settings'")).toEqual([{ payload: '{"theme":"sepia","translation":"en-pickthall"}' }]);
    expect(rows('SELECT resolved_at IS NOT NULL AS resolved FROM sync_conflicts')).toEqual([{ resolved: 1 }]);
    // The registry's export checksum is the one both devices computed over their own copies.
    const exported = await iqp(['sync', 'export', '--user', accounts.email, '--data', 'demo/registry-data', '--out', 'demo/sync.ndjson'], { cwd });
    expect(exported.code).toBe(0);
    const trailer = JSON.parse(readFileSync(`${cwd}/demo/sync.ndjson`, 'utf8').trimEnd().split('\n').at(-1)!).trailer;
    expect(trailer).toMatchObject({ count: 4, sha256: sync.sha256 });
    // Audited by counts, never with what the user wrote.
    const syncAudit = query("SELECT action, details FROM audit_log WHERE action LIKE 'sync.%'");
    expect(syncAudit).toMatch(/sync\.push/);
    expect(syncAudit).not.toMatch(/Memorize|Kursi|sepia|pickthall/);
    const audited = rows("SELECT action FROM audit_log WHERE action LIKE 'auth.%' ORDER BY id").map((r) => r['action']);
    expect(audited).toEqual(expect.arrayContaining(['auth.user_registered', 'auth.email_verified', 'auth.logout']));
    expect(accounts.audit).toEqual(audited);
    // Nothing secret reached the output.
    expect(r.stdout + r.stderr).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}|"(access|refresh)_token"|password/);
  });

  it('demo without --dir leaves nothing in the temporary directory, and its next steps work from a fresh clone', async () => {
    const cwd = tempDir();
    const tmp = tempDir('iqp-demo-tmp-');
    const r = await iqp(['demo'], { cwd, env: { TMPDIR: tmp } });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(tmp)).toEqual([]);
    expect(listTree(cwd)).toEqual([]);
    // Every suggested command runs through npx from a clone, and names no file the demo removed.
    const steps = r.stdout.split('\n').filter((l) => /^\s*(Try:)?\s*npx iqp /.test(l));
    expect(steps.length).toBeGreaterThan(0);
    expect(r.stdout).not.toContain(tmp);
    expect(r.stdout).not.toMatch(/^\s*(Try:\s*)?iqp /m);
    // The summary's pack lines are columns: each size, row count and signer starts where the others do.
    const packLines = r.stdout.split('\n').filter((l) => / rows {2}signed /.test(l));
    expect(packLines).toHaveLength(4);
    for (const column of [/ \d+(\.\d+)? (B|KiB|MiB) /, / rows /, /signed /]) expect(new Set(packLines.map((l) => l.search(column))).size).toBe(1);
    const json = await iqp(['demo', '--json'], { cwd, env: { TMPDIR: tmp } });
    expect(json.code, json.stderr).toBe(0);
    expect(json.stderr).toBe('');
    expect(json.json()).toMatchObject({ ok: true, kept: false });
    expect(readdirSync(tmp)).toEqual([]);
  }, 120_000);

  it('demo that fails part-way leaves nothing in the temporary directory', async () => {
    const cwd = tempDir();
    const tmp = tempDir('iqp-demo-tmp-');
    // SOURCE_DATE_EPOCH is read at the first build, after the demo's folder and key were written.
    const r = await iqp(['demo', '--json'], { cwd, env: { TMPDIR: tmp, SOURCE_DATE_EPOCH: 'soon' } });
    expect(r.code).toBe(2);
    expect(r.json().error.code).toBe('IQP_E_CONFIG');
    expect(readdirSync(tmp)).toEqual([]);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`demo stopped by ${signal} while its registry runs leaves nothing in the temporary directory`, async () => {
      const cwd = tempDir();
      const tmp = tempDir('iqp-demo-tmp-');
      const child = spawn(process.execPath, [BIN, 'demo'], { cwd, env: baseEnv({ TMPDIR: tmp }), stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (/registry on http/.test(stderr) && !child.killed) child.kill(signal);
      });
      expect(await exited, stderr).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(stderr).toMatch(/registry on http/);
      expect(readdirSync(tmp)).toEqual([]);
    }, 120_000);
  }
});
