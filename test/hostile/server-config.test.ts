/**
 * The registry's limits reach the real `iqp server start` from each source (flag, IQP_*, config
 * file), and a value out of range is a usage error before anything is created.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { iqp } from '../e2e/helpers.js';
import { call, spawnServer, tempDir } from '../server/helpers.js';
import { slowClient } from './server-sockets.js';

async function stop(server: Awaited<ReturnType<typeof spawnServer>>): Promise<void> {
  server.child.kill('SIGTERM');
  await server.exited;
}

describe('iqp server start', () => {
  it('takes headers_timeout_ms from the config file and --json-cache-bytes from the command line', async () => {
    // The server runs in its data directory, where it finds ./iqp.config.json.
    const dir = tempDir('iqp-hostile-config-');
    writeFileSync(join(dir, 'iqp.config.json'), JSON.stringify({ headers_timeout_ms: 300 }));
    const server = await spawnServer(dir, ['--json-cache-bytes', '0']);
    try {
      const slow = slowClient(server.url, 'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ', { everyMs: 20 });
      expect((await slow.closed)?.status).toBe(408);
      expect((await call(server.url, '/v1/keys')).status).toBe(200);
      const metrics = (await call(server.url, '/v1/metrics')).body.toString('utf8');
      expect(metrics).toMatch(/^iqp_json_cache_entries 0$/m);
    } finally {
      await stop(server);
    }
  });

  it('refuses limits out of range with IQP_E_CONFIG or a usage error, creating nothing', async () => {
    for (const [env, args] of [
      [{ IQP_MAX_CONCURRENT_UPLOADS: '0' }, []],
      [{ IQP_HEADERS_TIMEOUT_MS: 'soon' }, []],
      [{}, ['--upload-idle-timeout-ms', '0']],
      [{}, ['--max-connections', '-1']],
    ] as const) {
      const dir = tempDir('iqp-hostile-config-');
      const data = join(dir, 'data');
      const r = await iqp(['server', 'start', '--data', data, '--port', '0', '--json', ...args], { cwd: dir, env: { HOME: dir, ...env }, timeoutMs: 20_000 });
      expect(r.code, `${JSON.stringify(env)} ${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.json<{ error: { code: string } }>().error.code).toMatch(/^IQP_E_(CONFIG|USAGE)$/);
      expect(existsSync(data), 'no data directory').toBe(false);
    }
  });
});
