/**
 * The routes of plugins for the OpenAPI document (scripts/openapi.ts takes them as RouteGroups, as
 * the core's): each plugin's register() run with a ctx that only records. register() only
 * declares, so nothing is opened, started or written; anything else it reaches for throws.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RouteGroup } from '../../src/api/core/index.js';
import type { PluginDatabase } from './api.js';
import { createContext, type PluginState } from './context.js';
import { HookBus } from './hooks.js';
import { BUILTIN_DIR, loadPlugin } from './loader.js';
import { readManifest } from './manifest.js';


const refuse = () => Promise.reject(new Error('register() only declares: no database, config or services while the OpenAPI document is made'));
const noDb: PluginDatabase = { dialect: 'sqlite', all: refuse, get: refuse, run: refuse, transaction: refuse };

/** The built-in plugins' directories (dist/plugins/<id>). */
export function builtinPluginDirs(): string[] {
  if (!existsSync(BUILTIN_DIR)) return [];
  return readdirSync(BUILTIN_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(BUILTIN_DIR, d.name))
    .sort();
}

/** Each plugin's declared routes with prefix /v1/<id>, in the order of `dirs`. */
export async function pluginRouteGroups(dirs: readonly string[] = builtinPluginDirs()): Promise<RouteGroup[]> {
  const groups: RouteGroup[] = [];
  for (const dir of dirs) {
    const manifest = readManifest(dir);
    const def = await loadPlugin(manifest);
    const state: PluginState = { manifest, phase: 'register', routes: [], provided: new Map(), config: null };
    const ctx = createContext(state, {
      mode: 'command',
      dataDir: '/nonexistent',
      db: noDb,
      log: () => undefined,
      audit: refuse,
      clock: { nowMs: () => 0, now: () => new Date(0).toISOString() },
      hooks: new HookBus(),
      rateLimit: () => ({ consume: refuse, peek: refuse, reset: refuse }),
      counter: () => ({ inc() {} }),
      lookup: () => {
        throw new Error('service() is not available during register()');
      },
      peers: { send() {}, on() {} },
    });
    await def.register(ctx);
    groups.push({ prefix: `/v1/${manifest.id}`, routes: state.routes.map((r) => r.spec), plugin: { id: manifest.id, ...(manifest.description ? { description: manifest.description } : {}) } });
  }
  return groups;
}
