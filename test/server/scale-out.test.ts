/**
 * `iqp server start` as a scaled-out registry runs it: metadata in PostgreSQL (`database_url`),
 * pack bytes in an S3-compatible bucket (`blob_store = s3`, on s3rver, credentials from the AWS
 * SDK's environment variables), two workers. Nothing but staged uploads touches the data directory,
 * and stderr stays free of anything but iqp's own lines.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describePg, freshSchema } from '../postgres/harness.js';
import { blobFiles, buildTemplatePack, childServerPerTest, fresh, iqpOnData, newKey, registerKey, tempDir, tmpFiles, upload } from './helpers.js';
import { S3RVER_CREDENTIALS, s3rverForFile } from './s3rver.js';
import { iqp } from '../e2e/helpers.js';

const servers = childServerPerTest();
const s3 = s3rverForFile();

describePg('a registry on PostgreSQL and an S3-compatible bucket', () => {
  it('publishes into the bucket and serves from it on two workers, with nothing in the data directory', { timeout: 90_000 }, async () => {
    const schema = await freshSchema();
    try {
      const dataDir = tempDir('iqp-scale-');
      const bucket = await s3.newBucket();
      const env = {
        ...S3RVER_CREDENTIALS,
        IQP_DATABASE_URL: schema.url(),
        IQP_BLOB_STORE: 's3',
        IQP_S3_ENDPOINT: s3.endpoint,
        IQP_S3_BUCKET: bucket,
        IQP_S3_PREFIX: 'packs/',
        IQP_S3_FORCE_PATH_STYLE: 'true',
        IQP_S3_CHECKSUMS: 'when_required',
      };
      const token = async (role: string) => {
        const r = await iqpOnData(dataDir, ['token', 'create', '--role', role, '--name', role, '--json'], env);
        expect(r.code, r.stderr).toBe(0);
        return r.json<{ token: string }>().token;
      };
      const [admin, publisher] = [await token('admin'), await token('publisher')];
      const server = await servers.start(dataDir, ['--workers', '2'], env);
      const key = newKey();
      await registerKey(server.url, admin, key);
      const pack = await buildTemplatePack(tempDir('iqp-scale-packs-'), key, { authored: { package_id: 'scale.text', version: '1.0.0' } });
      expect((await upload(server.url, publisher, pack.path)).status).toBe(201);
      for (let i = 0; i < 4; i++) {
        const head = await fresh(server.url, '/v1/packs/scale.text/download?version=1.0.0', { method: 'HEAD' });
        expect(head.status, 'each worker serves it from the bucket').toBe(200);
      }
      expect(existsSync(s3.objectFile(bucket, `packs/sha256/${pack.sha256}`)), 'the pack is in the bucket').toBe(true);
      expect(blobFiles(dataDir)).toEqual([]);
      expect(tmpFiles(dataDir)).toEqual([]);
      expect(server.stderr(), 'nothing on stderr but iqp\'s own lines').toBe('');
    } finally {
      await schema.drop();
    }
  });

  it('refuses settings that cannot work together before it creates anything, with IQP_E_CONFIG naming the key', async () => {
    for (const [env, key] of [
      [{ IQP_BLOB_STORE: 's3' }, 's3_bucket'],
      [{ IQP_DOWNLOAD_MODE: 'redirect' }, 'download_mode'],
    ] as const) {
      const dataDir = join(tempDir('iqp-scale-bad-'), 'data');
      const r = await iqp(['server', 'start', '--data', dataDir, '--port', '0', '--workers', '2', '--json'], { cwd: tmpdir(), env: { HOME: tmpdir(), ...env } });
      expect(r.code, JSON.stringify(env)).toBe(2);
      expect(r.json()).toMatchObject({ error: { code: 'IQP_E_CONFIG', details: { key } } });
      expect(existsSync(dataDir), 'no data directory made').toBe(false);
    }
  });
});
