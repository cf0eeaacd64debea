/**
 * withPlugins: a CLI command's plugins, loaded in command mode on the data directory, migrating
 * under the lock only for that moment, usable beside a running server once migrated.
 */
import { describe, expect, it } from 'vitest';
import { serverConfig } from '../../server/config.js';
import { serviceRef } from '../../server/plugins/api.js';
import { withPlugins } from '../../server/plugins/offline.js';
import { startServer } from '../../server/start.js';
import { tempDir } from '../e2e/helpers.js';
import { withDatabase } from '../server/helpers.js';
import { HELLO, writePlugins } from './helpers.js';

const HELLO_V1 = serviceRef<{ greet(name: string): Promise<string> }>('hello.v1');
const AUTH_LIKE = serviceRef<unknown>('nobody.v1');

describe('withPlugins', () => {
  it('loads the enabled plugins in command mode, migrates them, and gives their services', async () => {
    const dataDir = tempDir('iqp-plugins-offline-');
    writePlugins(dataDir, { hello: { ...HELLO, config: { ...HELLO.config, greeting: 'Salaam' } } });
    const greeting = await withPlugins(dataDir, 'users list', async (host) => host.service(HELLO_V1).greet('Ada'));
    expect(greeting).toBe('Salaam, Ada');
    expect(withDatabase(dataDir, (db) => db.prepare("SELECT migration_id FROM plugin_migrations WHERE plugin_id = 'hello'").pluck().all())).toEqual(['0001-greetings']);
  });

  it('answers IQP_E_PLUGIN_UNAVAILABLE for a service no running plugin provides, naming what failed', async () => {
    const dataDir = tempDir('iqp-plugins-offline-');
    writePlugins(dataDir, { hello: { ...HELLO, config: {} } });
    const err = await withPlugins(dataDir, 'users list', async (host) => host.service(HELLO_V1)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'IQP_E_PLUGIN_UNAVAILABLE' });
    expect((err as Error).message).toMatch(/hello\.v1.*hello: .*secret/);
    await expect(withPlugins(dataDir, 'users list', async (host) => host.service(AUTH_LIKE))).rejects.toMatchObject({ code: 'IQP_E_PLUGIN_UNAVAILABLE' });
  });

  it('refuses to migrate while a server holds the data directory, and works beside it once migrated', async () => {
    const dataDir = tempDir('iqp-plugins-offline-');
    const server = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => undefined);
    try {
      // Enabled after the server started: its migration is pending, and only the lock holder may run it.
      writePlugins(dataDir, { hello: HELLO });
      await expect(withPlugins(dataDir, 'users list', async () => 'ran')).rejects.toMatchObject({ code: 'IQP_E_DATA_DIR_LOCKED' });
      expect(withDatabase(dataDir, (db) => db.prepare("SELECT count(*) FROM sqlite_master WHERE name LIKE 'hello%'").pluck().get())).toBe(0);
    } finally {
      await server.close();
    }
    await withPlugins(dataDir, 'users list', async () => 'migrated');
    const again = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => undefined);
    try {
      expect(await withPlugins(dataDir, 'users list', async (host) => host.service(HELLO_V1).greet('Ada'))).toBe('Hello, Ada');
    } finally {
      await again.close();
    }
  });
});
