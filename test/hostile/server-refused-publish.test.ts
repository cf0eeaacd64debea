/**
 * The registry closes the connection of an upload it refuses for its token without reading the
 * body (test/hostile/server-connections.test.ts); `iqp publish` of a pack too big to be sent before
 * the refusal must still report the refusal, not a network failure.
 */
import { expect, it } from 'vitest';
import { iqp } from '../e2e/helpers.js';
import { buildRandomPack, newKey, packRows, startRegistry, tempDir } from '../server/helpers.js';

it('iqp publish of a large pack with a wrong token reports IQP_E_UNAUTHORIZED', async () => {
  const key = newKey();
  const reg = await startRegistry({ keys: [key] });
  try {
    const dir = tempDir('iqp-hostile-publish-');
    const pack = await buildRandomPack(dir, key, { mib: 16, package_id: 'refused.pack', version: '1.0.0' });
    const r = await iqp(['publish', pack.path, '--registry', reg.url, '--json'], {
      cwd: dir,
      env: { HOME: dir, IQP_TOKEN: 'iqp_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', IQP_RETRY_BASE_MS: '1' },
    });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(JSON.stringify(r.json())).toContain('IQP_E_UNAUTHORIZED');
    expect(packRows(reg.dataDir)).toEqual([]);
  } finally {
    await reg.close();
  }
});
