/**
 * Finding a plugin (a built-in id, a directory, or an npm package) and loading its module. Finding
 * and reading the manifest run none of the plugin's code; only loadPlugin imports the module, and
 * then checks that what it exports is the plugin its manifest describes.
 */
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IqpError } from '../../src/errors.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import type { PluginDefinition } from './api.js';
import { type LoadedManifest, MANIFEST_FILE, PLUGIN_ID, readManifest } from './manifest.js';

/** Where the built-in plugins are compiled to (their sources are plugins/<id>/). */
export const BUILTIN_DIR = join(PACKAGE_ROOT, 'dist', 'plugins');

export type SourceKind = 'builtin' | 'path' | 'package';

export function sourceKind(source: string): SourceKind {
  return source === 'builtin' ? 'builtin' : isAbsolute(source) ? 'path' : 'package';
}

const NPM_NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;

function packageDir(name: string, dataDir: string, cwd: string): string | null {
  if (!NPM_NAME.test(name) || name.length > 214) return null;
  // The data directory first (an operator installs plugins beside the registry's data), then where iqp was run.
  for (const base of [dataDir, cwd]) {
    const require = createRequire(join(resolve(base), 'noop.js'));
    for (const file of [MANIFEST_FILE, 'package.json']) {
      try {
        return dirname(require.resolve(`${name}/${file}`));
      } catch {
        // Not exported or not installed here: try the next.
      }
    }
  }
  return null;
}

/** The directory of the plugin `id` configured with `source`; IQP_E_PLUGIN_MISSING when it is not there. */
export function pluginDir(id: string, source: string, dataDir: string, cwd = process.cwd()): string {
  const kind = sourceKind(source);
  const dir = kind === 'builtin' ? join(BUILTIN_DIR, id) : kind === 'path' ? source : packageDir(source, dataDir, cwd);
  if (!dir || !existsSync(dir) || !statSync(dir).isDirectory()) {
    const what = kind === 'builtin' ? `no built-in plugin "${id}"` : kind === 'path' ? `${source} does not exist` : `the npm package "${source}" is not installed in ${dataDir} or ${cwd}`;
    throw new IqpError('IQP_E_PLUGIN_MISSING', `Plugin ${id}: ${what}.`, { plugin: id, source });
  }
  return dir;
}

/** Whether `iqp plugins enable`'s argument names a directory (starts with . or /, or names one that exists). */
export function isPathArg(arg: string, cwd: string): boolean {
  return arg.startsWith('.') || isAbsolute(arg) || existsSync(resolve(cwd, arg));
}

/**
 * What the user typed for `iqp plugins enable` → the source to record: a built-in id, a path
 * (anything starting with . or / or naming an existing directory), else an npm package name.
 */
export function sourceFor(arg: string, dataDir: string, cwd: string): { source: string; dir: string } {
  if (PLUGIN_ID.test(arg) && existsSync(join(BUILTIN_DIR, arg, MANIFEST_FILE))) return { source: 'builtin', dir: join(BUILTIN_DIR, arg) };
  const asPath = resolve(cwd, arg);
  if (isPathArg(arg, cwd)) {
    if (!existsSync(asPath)) throw new IqpError('IQP_E_FILE_NOT_FOUND', `${asPath} does not exist.`);
    return { source: asPath, dir: asPath };
  }
  const dir = packageDir(arg, dataDir, cwd);
  if (!dir) throw new IqpError('IQP_E_PLUGIN_MISSING', `"${arg}" is not a built-in plugin, a directory, or an npm package installed in ${dataDir} or ${cwd}.`, { source: arg });
  return { source: arg, dir };
}

export function readPluginManifest(id: string, source: string, dataDir: string, cwd?: string): LoadedManifest {
  const manifest = readManifest(pluginDir(id, source, dataDir, cwd));
  if (manifest.id !== id) {
    throw new IqpError('IQP_E_PLUGIN_INVALID', `${manifest.dir}/${MANIFEST_FILE} is plugin "${manifest.id}", but server.json enables it as "${id}".`, { plugin: id, field: 'id' });
  }
  return manifest;
}

/** Imports the plugin's module and checks its default export against its manifest. */
export async function loadPlugin(manifest: LoadedManifest): Promise<PluginDefinition> {
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(manifest.entryPath).href)) as { default?: unknown };
  } catch (err) {
    throw new IqpError('IQP_E_PLUGIN_INVALID', `Plugin ${manifest.id}: its module ${manifest.entry} failed to load: ${(err as Error)?.message ?? err}`, { plugin: manifest.id, field: 'entry' }, { cause: err });
  }
  const def = mod.default as Partial<PluginDefinition> | undefined;
  const wrong = (field: string, message: string) =>
    new IqpError('IQP_E_PLUGIN_INVALID', `Plugin ${manifest.id}: ${manifest.entry} ${message}`, { plugin: manifest.id, field }, { hint: 'A plugin module default-exports definePlugin({ manifest, register, start?, stop? }) (docs/plugins.md).' });
  if (typeof def !== 'object' || def === null) throw wrong('default', 'has no default export made with definePlugin().');
  if (typeof def.register !== 'function') throw wrong('register', 'exports no register() function.');
  for (const hook of ['start', 'stop'] as const) if (def[hook] !== undefined && typeof def[hook] !== 'function') throw wrong(hook, `exports a ${hook} that is not a function.`);
  if (def.manifest?.id !== manifest.id || def.manifest?.version !== manifest.version) {
    throw wrong('manifest', `defines plugin ${def.manifest?.id}@${def.manifest?.version}, but ${MANIFEST_FILE} says ${manifest.id}@${manifest.version}.`);
  }
  return def as PluginDefinition;
}
