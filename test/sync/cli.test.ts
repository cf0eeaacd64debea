/**
 * `iqp sync …` through the real binary, beside a real `iqp server start` on the same data
 * directory: an export whose trailer checksum GNU coreutils' sha256sum agrees with, imported into
 * another account and exported again to the same checksum; a tampered file refused with nothing
 * changed; compaction and stats while the server runs.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, childServerPerTest, iqpOnData, newRegistryDir } from '../server/helpers.js';

const PASSWORD = 'x7#kq2Lm-river-stone';
const servers = childServerPerTest();
const run = iqpOnData;

describe('iqp sync', () => {
  it('exports, imports, compacts and counts beside a running server', async () => {
    const dataDir = await newRegistryDir('iqp-sync-cli-');
    for (const id of ['auth', 'sync']) expect((await run(dataDir, ['plugins', 'enable', id])).code).toBe(0);
    const server = await servers.start(dataDir);
    for (const email of ['ann@example.org', 'bob@example.org']) expect((await run(dataDir, ['users', 'create', email], { IQP_USER_PASSWORD: PASSWORD })).code).toBe(0);
    const token = (await call(server.url, '/v1/auth/login', { method: 'POST', json: { email: 'ann@example.org', password: PASSWORD } })).json().access_token as string;
    const mutations = Array.from({ length: 20 }, (_, i) => ({ mutation_id: `m${i}`, entity: i % 2 ? 'bookmark' : 'progress', entity_id: `s${i}`, op: 'upsert', payload: { ayah: i, note: `n${i}` } }));
    const pushed = await call(server.url, '/v1/sync/push', { method: 'POST', json: { device_id: 'ann-phone-1', schema_version: 1, mutations }, headers: { authorization: `Bearer ${token}` } });
    expect(pushed.status).toBe(200);

    const file = join(dataDir, 'ann.ndjson');
    const exported = await run(dataDir, ['sync', 'export', '--user', 'ann@example.org', '--out', file, '--json']);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toBe('');
    const trailer = exported.json().exported;
    expect(trailer).toMatchObject({ count: 20, format: 'iqp-sync-export/1' });
    // The checksum covers the data lines: everything but the last line, as sha256sum reads it.
    const lines = readFileSync(file, 'utf8');
    const data = lines.slice(0, lines.lastIndexOf('\n', lines.length - 2) + 1);
    expect(execFileSync('sha256sum', { input: data }).toString().split(' ')[0]).toBe(trailer.sha256);

    const tampered = join(dataDir, 'tampered.ndjson');
    writeFileSync(tampered, lines.replace('"n3"', '"n4"'));
    const refused = await run(dataDir, ['sync', 'import', tampered, '--user', 'bob@example.org', '--mode', 'replace', '--json']);
    expect(refused.code).toBe(1);
    expect(refused.json().error.code).toBe('IQP_E_SYNC_IMPORT_INVALID');
    expect((await run(dataDir, ['sync', 'stats', '--user', 'bob@example.org', '--json'])).json().stats).toMatchObject({ entities: 0 });

    const imported = await run(dataDir, ['sync', 'import', file, '--user', 'bob@example.org', '--mode', 'replace', '--json']);
    expect(imported.code).toBe(0);
    expect(imported.json().imported).toMatchObject({ imported: 20, sha256: trailer.sha256 });
    const again = await run(dataDir, ['sync', 'export', '--user', 'bob@example.org', '--out', '-']);
    expect(again.stdout.slice(0, again.stdout.lastIndexOf('\n', again.stdout.length - 2) + 1)).toBe(data);

    const compacted = await run(dataDir, ['sync', 'compact', '--json']);
    expect(compacted.code).toBe(0);
    expect(compacted.json().compacted.users).toBe(2);
    expect((await run(dataDir, ['sync', 'stats', '--json'])).json().stats).toEqual({ users: 2, entities: 40, tombstones: 0, conflicts_open: 0, devices: 1 });
    const unknown = await run(dataDir, ['sync', 'export', '--user', 'nobody@example.org', '--out', '-', '--json']);
    expect([unknown.code, unknown.json().error.code]).toEqual([2, 'IQP_E_USER_NOT_FOUND']);
  });
});
