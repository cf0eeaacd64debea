/**
 * Helpers for the plugin host's tests: the fixture plugins (fixtures/plugins/<name>, plain folders),
 * a data directory whose server.json enables some of them, and a real registry started on it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../server/app.js';
import { serverConfig } from '../../server/config.js';
import { type RunningServer, startServer } from '../../server/start.js';
import { ROOT, tempDir } from '../e2e/helpers.js';

export const PLUGIN_FIXTURES = join(ROOT, 'fixtures', 'plugins');

export function fixturePlugin(name: string): string {
  return join(PLUGIN_FIXTURES, name);
}

export interface EntrySpec {
  /** Fixture folder name; the source recorded is its absolute path. */
  readonly fixture: string;
  readonly enabled?: boolean;
  readonly required?: boolean;
  readonly start_timeout_ms?: number;
  readonly config?: Record<string, unknown>;
}

/** Writes `<dataDir>/server.json` enabling the given fixtures under their plugin ids. */
export function writePlugins(dataDir: string, plugins: Record<string, EntrySpec>): void {
  const doc = {
    plugins: Object.fromEntries(
      Object.entries(plugins).map(([id, p]) => [
        id,
        { enabled: p.enabled ?? true, source: fixturePlugin(p.fixture), required: p.required ?? false, ...(p.start_timeout_ms ? { start_timeout_ms: p.start_timeout_ms } : {}), config: p.config ?? {} },
      ]),
    ),
  };
  writeFileSync(join(dataDir, 'server.json'), JSON.stringify(doc, null, 2));
}

/** hello's config with its $env secret. */
export const HELLO = { fixture: 'hello', config: { secret: { $env: 'IQP_TEST_HELLO_SECRET' } } } as const;
process.env['IQP_TEST_HELLO_SECRET'] ??= 'correct horse battery staple';

export interface PluginRegistry {
  readonly url: string;
  readonly dataDir: string;
  readonly running: RunningServer;
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** A real registry (startServer on 127.0.0.1:0) over a fresh data directory with `plugins` enabled. */
export async function startWithPlugins(plugins: Record<string, EntrySpec>, dataDir = tempDir('iqp-plugins-')): Promise<PluginRegistry> {
  writePlugins(dataDir, plugins);
  const logs: Record<string, unknown>[] = [];
  const log: Logger = (line) => logs.push(line);
  const running = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), log);
  return { url: running.url, dataDir, running, logs, close: () => running.close() };
}
