/**
 * Plugins under `iqp server start --workers N`: every worker runs the plugins and config the
 * primary read from server.json at start, including a worker started later to replace one that
 * died (changes made with `iqp plugins` meanwhile wait for the next start, as documented), and a
 * replacement that fails to start is tried again until one serves.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { childServerPerTest, fresh, iqpOnData, newRegistryDir, tempDir, until } from '../server/helpers.js';
import { fixturePlugin } from './helpers.js';

const plugins = (dataDir: string, args: string[]) => iqpOnData(dataDir, ['plugins', ...args]);

/** Greets on fresh connections, which the cluster hands to the workers in turn: the answers every worker gives. */
async function greetings(url: string, n = 6): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await fresh(url, '/v1/hello/greet', { method: 'POST', json: { name: 'Ada' } });
    expect(r.status, r.body).toBe(200);
    seen.add((JSON.parse(r.body) as { message: string }).message);
  }
  return [...seen];
}

/** The plugins each worker's /v1/health reports, over fresh connections. */
async function healthPlugins(url: string, n = 6): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add(JSON.stringify((JSON.parse((await fresh(url, '/v1/health')).body) as { plugins?: unknown }).plugins));
  return [...seen];
}

const REPLACED = 'a replacement server worker is serving';

describe('iqp server start --workers with plugins', () => {
  const servers = childServerPerTest();

  it('a replacement worker runs the plugins and config the server started with, not server.json as changed since', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-workers-');
    expect((await plugins(dataDir, ['enable', fixturePlugin('hello')])).code).toBe(0);
    expect((await plugins(dataDir, ['config', 'hello', '--set', 'secret=a secret long enough', '--set', 'greeting=Hello'])).code).toBe(0);
    const server = await servers.start(dataDir, ['--workers', '2']);
    expect(await greetings(server.url)).toEqual(['Hello, Ada']);
    const health = await healthPlugins(server.url);
    expect(health).toHaveLength(1);

    // Changed while it runs: a new greeting, and a newly enabled plugin with a migration to run.
    expect((await plugins(dataDir, ['config', 'hello', '--set', 'greeting=CHANGED'])).code).toBe(0);
    expect((await plugins(dataDir, ['enable', fixturePlugin('typed')])).code).toBe(0);
    process.kill(server.info.workers[0]!, 'SIGKILL');
    const replaced = await until(() => server.stderr().includes(REPLACED), 15_000);
    expect(replaced, `a new worker replaces it:\n${server.stderr()}`).toBe(true);
    expect(server.stderr()).not.toContain('a replacement server worker failed to start');
    expect(await greetings(server.url), 'every worker greets as the server started').toEqual(['Hello, Ada']);
    expect(await healthPlugins(server.url), 'and runs the same plugins').toEqual(health);
  });

  it('tries a replacement that fails to start again, backing off, until one serves', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-workers-');
    const marker = join(tempDir('iqp-plugins-workers-marker-'), 'fail-start');
    const dir = join(tempDir('iqp-plugins-workers-src-'), 'flaky');
    mkdirSync(dir);
    const manifest = { id: 'flaky', version: '1.0.0', host: '^1.0.0', entry: './index.js' };
    writeFileSync(join(dir, 'iqp-plugin.json'), JSON.stringify(manifest));
    // Fails to start while the marker file exists (its database, say, unreachable for a while).
    writeFileSync(
      join(dir, 'index.js'),
      `import { existsSync } from 'node:fs';\nexport default { manifest: ${JSON.stringify(manifest)}, async register() {}, async start() { if (existsSync(${JSON.stringify(marker)})) throw new Error('flaky is down'); } };\n`,
    );
    expect((await plugins(dataDir, ['enable', dir, '--required'])).code).toBe(0);
    const server = await servers.start(dataDir, ['--workers', '2']);

    writeFileSync(marker, '');
    process.kill(server.info.workers[0]!, 'SIGKILL');
    expect(await until(() => server.stderr().includes('a replacement server worker failed to start'), 15_000), server.stderr()).toBe(true);
    rmSync(marker);
    expect(existsSync(marker)).toBe(false);
    expect(await until(() => server.stderr().includes(REPLACED), 20_000), `tried again and serving:\n${server.stderr()}`).toBe(true);
    for (let i = 0; i < 4; i++) expect((await fresh(server.url, '/v1/health')).status).toBe(200);
  });
});
