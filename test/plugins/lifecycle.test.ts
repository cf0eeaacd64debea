/**
 * The host's lifecycle with small plugins made for each case (plain folders in a temp dir): start
 * and stop order, the stop deadline, requirement checks (versions, cycles, services only from
 * required plugins).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { databasePath } from '../../server/config.js';
import { migrateDataDir } from '../../server/datadir.js';
import { PluginHost } from '../../server/plugins/host.js';
import { writeServerFile } from '../../server/plugins/server-file.js';
import { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { tempDir } from '../e2e/helpers.js';

declare global {
  var lifecycleEvents: string[];
}

interface Spec {
  readonly version?: string;
  readonly requires?: Record<string, string>;
  readonly provides?: string[];
  /** Body of start(ctx) and stop(ctx), as JavaScript. */
  readonly start?: string;
  readonly stop?: string;
}

/** A plugin folder whose start and stop record themselves in globalThis.lifecycleEvents. */
function plugin(root: string, id: string, spec: Spec = {}): string {
  const dir = join(root, id);
  mkdirSync(dir);
  const manifest = { id, version: spec.version ?? '1.0.0', host: '^1.0.0', entry: './index.js', ...(spec.requires ? { requires: spec.requires } : {}), ...(spec.provides ? { provides: spec.provides } : {}) };
  writeFileSync(join(dir, 'iqp-plugin.json'), JSON.stringify(manifest));
  const provide = (spec.provides ?? []).map((ref) => `ctx.provide({ id: '${ref}' }, { from: '${id}' });`).join('\n');
  writeFileSync(
    join(dir, 'index.js'),
    `const manifest = ${JSON.stringify(manifest)};
export default { manifest,
  async register(ctx) { ${provide} },
  async start(ctx) { globalThis.lifecycleEvents.push('start ${id}'); ${spec.start ?? ''} },
  async stop(ctx) { globalThis.lifecycleEvents.push('stop ${id}'); ${spec.stop ?? ''} },
};\n`,
  );
  return dir;
}

const hosts: { host: PluginHost; db: SqlitePluginDatabase }[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) {
    await h.host.stop();
    h.db.close();
  }
});

async function startHost(plugins: Record<string, Spec>, options: { stopDeadlineMs?: number } = {}) {
  globalThis.lifecycleEvents = [];
  const dataDir = tempDir('iqp-plugin-lifecycle-');
  await migrateDataDir(dataDir);
  const root = tempDir('iqp-plugin-sources-');
  writeServerFile(dataDir, { plugins: Object.fromEntries(Object.entries(plugins).map(([id, s]) => [id, { enabled: true, source: plugin(root, id, s), required: false, config: {} }])) });
  const db = new SqlitePluginDatabase(databasePath(dataDir));
  const logs: Record<string, unknown>[] = [];
  const host = await PluginHost.start({ dataDir, mode: 'command', db, log: (l) => logs.push(l), audit: async () => undefined, ...options });
  hosts.push({ host, db });
  return { host, logs, events: globalThis.lifecycleEvents };
}

describe('plugin lifecycle', () => {
  it('starts in dependency order and stops in reverse; a stop past its deadline is logged and the rest still stop', async () => {
    const { host, logs, events } = await startHost(
      { c: { requires: { b: '^1.0.0' }, stop: 'await new Promise(() => {});' }, b: { requires: { a: '^1.0.0' } }, a: {} },
      { stopDeadlineMs: 50 },
    );
    expect(events).toEqual(['start a', 'start b', 'start c']);
    await host.stop();
    expect(events.slice(3)).toEqual(['stop c', 'stop b', 'stop a']);
    expect(logs.some((l) => l['msg'] === 'plugin failed to stop' && l['plugin'] === 'c' && String(l['error']).includes('did not finish within 50 ms'))).toBe(true);
  });

  it('refuses a requirement out of range, and requirement cycles', async () => {
    const { host } = await startHost({ a: { version: '1.4.0' }, b: { requires: { a: '^2.0.0' } }, x: { requires: { y: '*' } }, y: { requires: { x: '*' } } });
    const failed = Object.fromEntries(host.status().failed.map((f) => [f.id, f]));
    expect(failed['b']).toMatchObject({ code: 'IQP_E_PLUGIN_MISSING', message: 'Plugin b requires a ^2.0.0, but a@1.4.0 is enabled.' });
    expect(failed['x']).toMatchObject({ code: 'IQP_E_PLUGIN_INVALID', message: expect.stringMatching(/cycle of requirements among x, y/) });
    expect(failed['y']?.code).toBe('IQP_E_PLUGIN_INVALID');
    expect(host.status().loaded).toEqual([{ id: 'a', version: '1.4.0' }]);
  });

  it('gives a service only to plugins that require its provider', async () => {
    const { host } = await startHost({
      provider: { provides: ['thing.v1'] },
      user: { requires: { provider: '^1.0.0' }, start: "if (ctx.service({ id: 'thing.v1' }).from !== 'provider') throw new Error('wrong service');" },
      stranger: { start: "ctx.service({ id: 'thing.v1' });" },
    });
    expect(host.status().loaded.map((p) => p.id)).toEqual(['provider', 'user']);
    expect(host.status().failed).toEqual([
      { id: 'stranger', code: 'IQP_E_PLUGIN_MISSING', message: 'Plugin stranger asks for thing.v1, but its provider provider is not among the plugins it requires.' },
    ]);
  });
});
