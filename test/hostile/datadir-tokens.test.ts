/**
 * `iqp token …` beside a running registry: it only reads and adds rows. It never sweeps tmp/ or
 * removes blobs (an upload in flight survives it and then succeeds), and on a registry an older iqp
 * left it migrates only when no server holds the lock. (A directory with no registry at all is
 * refused: datadir-missing.test.ts.)
 */
import Database from 'better-sqlite3';
import { readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDataDir } from '../../server/lock.js';
import { applyMigrations, appliedVersions, LATEST_SCHEMA } from '../../server/stores/sqlite/schema.js';
import { blobFiles, buildRandomPack, type BuiltPack, type ChildServer, newKey, packRows, registerKey, spawnServer, tempDir, tmpFiles, until } from '../server/helpers.js';
import { iqpIn, leftoversPresent, plantLeftovers, snapshot } from './datadir-helpers.js';

const started: ChildServer[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGTERM');
      expect((await s.exited).code).toBe(0);
    }
  }
});

async function serve(dataDir: string): Promise<ChildServer> {
  const s = await spawnServer(dataDir);
  started.push(s);
  return s;
}

async function token(dataDir: string, role: 'admin' | 'publisher'): Promise<{ token: string; id: string }> {
  const r = await iqpIn(dataDir, ['token', 'create', '--role', role, '--name', `datadir ${role}`, '--data', dataDir]);
  expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
  return r.json();
}

/**
 * PUT /v1/admin/packs with Content-Length, sending the first `first` bytes at once and the rest only
 * when `rest()` is called: the upload stays mid-body for as long as the test needs.
 */
function pausedUpload(base: string, bearer: string, body: Buffer, first: number): { rest(): void; reply: Promise<{ status: number; body: string }> } {
  const u = new URL(base);
  const req = request({
    host: u.hostname,
    port: u.port,
    method: 'PUT',
    path: '/v1/admin/packs',
    agent: false,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/octet-stream', 'content-length': body.length },
  });
  const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
  });
  req.write(body.subarray(0, first));
  return { rest: () => req.end(body.subarray(first)), reply };
}

describe('token commands beside a running registry', () => {
  it('an upload in progress survives `iqp token create` on the same directory and then succeeds', async () => {
    const data = tempDir('iqp-datadir-');
    const work = tempDir('iqp-datadir-packs-');
    const key = newKey();
    const pack: BuiltPack = await buildRandomPack(work, key, { mib: 2, package_id: 'datadir.inflight', version: '1.0.0' });
    const body = readFileSync(pack.path);
    const server = await serve(data);
    const admin = await token(data, 'admin');
    await registerKey(server.url, admin.token, key);

    const half = body.length >> 1;
    const upload = pausedUpload(server.url, admin.token, body, half);
    // Mid-body: the server has begun writing the first half to its staged file in tmp/.
    const staged = () => tmpFiles(data).filter((n) => n.startsWith('upload-'));
    expect(await until(() => staged().length === 1 && statSync(join(data, 'tmp', staged()[0]!)).size > 0, 20_000), 'the upload is staged').toBe(true);
    const name = staged()[0]!;

    await token(data, 'publisher');
    expect(staged(), 'token create left the staged upload alone').toEqual([name]);

    upload.rest();
    const reply = await upload.reply;
    expect(reply.status, reply.body).toBe(201);
    expect(packRows(data).map((r) => r.sha256)).toEqual([pack.sha256]);
    expect(blobFiles(data)).toEqual([pack.sha256]);
  });

  it('token create, list and revoke never touch tmp/ or blobs', async () => {
    const data = tempDir('iqp-datadir-');
    await serve(data);
    const left = plantLeftovers(data);
    const all = leftoversPresent(data, left);
    expect(all).toHaveLength(2);

    const created = await token(data, 'publisher');
    expect(leftoversPresent(data, left), 'after token create').toEqual(all);
    const list = await iqpIn(data, ['token', 'list', '--data', data]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.json().tokens.map((t: { id: string }) => t.id)).toEqual([created.id]);
    expect(leftoversPresent(data, left), 'after token list').toEqual(all);
    const revoke = await iqpIn(data, ['token', 'revoke', created.id, '--data', data]);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(leftoversPresent(data, left), 'after token revoke').toEqual(all);
  });
});

/** A registry as an older iqp left it: registry.sqlite with every migration but the last. */
function olderRegistry(): string {
  const data = tempDir('iqp-datadir-');
  const db = new Database(join(data, 'registry.sqlite'));
  try {
    applyMigrations(db, LATEST_SCHEMA - 1);
  } finally {
    db.close();
  }
  return data;
}

describe('token commands on a registry whose schema is older than this iqp’s', () => {
  it('migrate it when nobody holds the lock (this iqp installed over an older one, before its first start)', async () => {
    const data = olderRegistry();
    const r = await iqpIn(data, ['token', 'create', '--role', 'admin', '--data', data], tempDir('iqp-datadir-cwd-'));
    expect(r.code, r.stderr).toBe(0);
    const list = await iqpIn(data, ['token', 'list', '--data', data], tempDir('iqp-datadir-cwd-'));
    expect(list.json().tokens).toHaveLength(1);
    const db = new Database(join(data, 'registry.sqlite'), { readonly: true });
    try {
      expect(appliedVersions(db).at(-1)).toBe(LATEST_SCHEMA);
    } finally {
      db.close();
    }
  });

  it('are refused while another process holds the lock (IQP_E_DATA_DIR_LOCKED), and write nothing', async () => {
    const data = olderRegistry();
    const lock = lockDataDir(data, 'test');
    try {
      const before = snapshot(data);
      const r = await iqpIn(data, ['token', 'create', '--role', 'admin', '--data', data]);
      expect([r.code, r.json().error.code], r.stdout).toEqual([4, 'IQP_E_DATA_DIR_LOCKED']);
      expect(r.json().error.message).toContain(`PID ${process.pid}`);
      expect(snapshot(data)).toEqual(before);
    } finally {
      lock.release();
    }
  });
});
