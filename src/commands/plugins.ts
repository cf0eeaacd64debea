/**
 * `iqp plugins list | enable | disable | config`: which registry plugins run, from the data
 * directory's server.json. Reads manifests only (no plugin code runs), checks every change against
 * them before writing, and writes server.json atomically, each change under server.json.lock so that
 * commands run at once keep each other's changes; a running server picks changes up at its next start.
 */
import { Command } from 'commander';
import type { Context } from '../cli/context.js';
import { printable, printableLines } from '../cli/output.js';
import { intFlag, withSettings } from '../cli/setting-options.js';
import { IqpError } from '../errors.js';
import { maskSecrets, validateConfig } from '../../server/plugins/config.js';
import { rivalProviders } from '../../server/plugins/deps.js';
import { isPathArg, pluginDir, readPluginManifest, sourceFor } from '../../server/plugins/loader.js';
import type { LoadedManifest } from '../../server/plugins/manifest.js';
import { readManifest } from '../../server/plugins/manifest.js';
import { type PluginEntry, changeServerFile, readServerFile, serverFilePath } from '../../server/plugins/server-file.js';
import { registryDataDir } from '../../server/config.js';
import type { CommandGroup } from './types.js';

const NEXT_START = 'Changes apply at the next `iqp server start`.';

function manifestOrError(ctx: Context, dataDir: string, id: string, entry: PluginEntry): { manifest: LoadedManifest } | { error: IqpError } {
  try {
    return { manifest: readPluginManifest(id, entry.source, dataDir, ctx.cwd) };
  } catch (err) {
    if (err instanceof IqpError) return { error: err };
    throw err;
  }
}

/** What the server would refuse in this config (checked without its environment), or null. */
function configProblem(manifest: LoadedManifest, config: Readonly<Record<string, unknown>>): string | null {
  try {
    validateConfig(manifest, config, null);
    return null;
  } catch (err) {
    if (err instanceof IqpError) return err.message;
    throw err;
  }
}

const list = {
  define: () => withSettings(new Command('list').description('list the plugins in the data directory’s server.json (reads their manifests, runs no plugin code)'), 'plugins list'),
  async run(ctx: Context, _opts: unknown): Promise<void> {
    const dataDir = registryDataDir(ctx.config);
    const plugins = Object.entries(readServerFile(dataDir).plugins).map(([id, entry]) => {
      const found = manifestOrError(ctx, dataDir, id, entry);
      const problem = 'manifest' in found ? configProblem(found.manifest, entry.config) : found.error.message;
      const config = problem === null ? { valid: true } : { valid: false, error: problem };
      return {
        id,
        version: 'manifest' in found ? found.manifest.version : null,
        source: entry.source,
        enabled: entry.enabled,
        required: entry.required,
        config_valid: config.valid,
        ...(config.error ? { error: config.error } : {}),
      };
    });
    ctx.out.result({ data_dir: dataDir, plugins }, () =>
      plugins.length === 0
        ? `No plugins in ${serverFilePath(dataDir)}. Enable one with: iqp plugins enable <id|path|package>`
        : plugins
            .map((p) =>
              printable(
                `${p.id}@${p.version ?? '?'}  ${p.enabled ? 'enabled' : 'disabled'}${p.required ? ', required' : ''}  ${p.source}  ${p.config_valid ? 'config ok' : `PROBLEM: ${p.error}`}`,
              ),
            )
            .join('\n'),
    );
  },
};

/**
 * Refuses to enable a plugin that provides a service another enabled plugin provides (a second
 * auth.v1): the server would refuse to start both, so it is said now, with nothing written.
 */
function refuseRivals(ctx: Context, dataDir: string, plugins: Readonly<Record<string, PluginEntry>>, manifest: LoadedManifest): void {
  if ((manifest.provides ?? []).length === 0) return;
  const others = Object.entries(plugins)
    .filter(([other, entry]) => other !== manifest.id && entry.enabled)
    .map(([other, entry]) => {
      const found = manifestOrError(ctx, dataDir, other, entry);
      return [other, 'manifest' in found ? found.manifest.provides : undefined] as const;
    });
  const rivals = rivalProviders([[manifest.id, manifest.provides], ...others]);
  // Only rivalries this plugin is part of: two others at odds already are the server's to report.
  const mine = [...rivals].filter(([, ids]) => ids[0] === manifest.id);
  if (mine.length > 0) {
    const other = mine[0]![1][1]!;
    const shared = mine.filter(([, ids]) => ids.includes(other)).map(([ref]) => ref);
    throw new IqpError(
      'IQP_E_PLUGIN_PROVIDED',
      `${manifest.id} provides ${shared.join(', ')}, which the enabled plugin ${other} provides already: the registry would start neither. Disable ${other} first (iqp plugins disable ${other}) to use ${manifest.id} instead.`,
      { plugin: manifest.id, provided_by: other, services: shared },
    );
  }
}

const enable = {
  define: () =>
    withSettings(
      new Command('enable')
        .description('enable a plugin: a built-in id, a plugin directory, or an installed npm package')
        .argument('<plugin>', 'built-in id (auth), path to a directory with iqp-plugin.json, or npm package name')
        .option('--required', 'refuse to start the server when this plugin fails (default: leave it out and answer 503 on its routes)')
        .option('--no-required', 'leave this plugin out if it fails, and start without it (undoes --required)')
        .option('--start-timeout-ms <ms>', "how long the plugin's start may take (1-600000; default: the plugin's own, usually 10000)", intFlag('--start-timeout-ms', 1, 600_000)),
      'plugins enable',
    ),
  async run(ctx: Context, opts: { required?: boolean; startTimeoutMs?: number }, arg: string): Promise<void> {
    const dataDir = registryDataDir(ctx.config);
    const { file, manifest, source, entry } = changeServerFile(dataDir, (file, write) => {
      // An id already in server.json (iqp plugins enable hello --no-required) keeps its recorded source.
      const recorded = file.plugins[arg];
      const { source, dir } = recorded && !isPathArg(arg, ctx.cwd) ? { source: recorded.source, dir: pluginDir(arg, recorded.source, dataDir, ctx.cwd) } : sourceFor(arg, dataDir, ctx.cwd);
      const manifest = readManifest(dir);
      refuseRivals(ctx, dataDir, file.plugins, manifest);
      const before = file.plugins[manifest.id];
      // --required / --no-required and --start-timeout-ms change the entry; left out, they keep what it had.
      const entry: PluginEntry = {
        ...(before ?? { config: {} }),
        enabled: true,
        source,
        required: opts.required ?? before?.required ?? false,
        ...(opts.startTimeoutMs === undefined ? {} : { start_timeout_ms: opts.startTimeoutMs }),
      };
      write({ plugins: { ...file.plugins, [manifest.id]: entry } });
      return { file, manifest, source, entry };
    });
    const problem = configProblem(manifest, entry.config);
    ctx.out.result({ id: manifest.id, version: manifest.version, source, enabled: true, required: entry.required, ...(entry.start_timeout_ms === undefined ? {} : { start_timeout_ms: entry.start_timeout_ms }), config_valid: problem === null, ...(problem ? { error: problem } : {}) }, () =>
      printable(`Enabled ${manifest.id}@${manifest.version} (${source})${entry.required ? ', required' : ''}. ${NEXT_START}`),
    );
    if (problem) ctx.out.warn(`${problem} Set it with: iqp plugins config ${manifest.id} --set key=value`);
    const missing = Object.keys(manifest.requires ?? {}).filter((id) => !file.plugins[id]?.enabled);
    if (missing.length > 0) ctx.out.warn(`${manifest.id} requires ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not enabled.`);
  },
};

const disable = {
  define: () => withSettings(new Command('disable').description('disable a plugin (its routes answer 404 from the next start; its tables stay)').argument('<id>', 'plugin id'), 'plugins disable'),
  async run(ctx: Context, _opts: unknown, id: string): Promise<void> {
    const dataDir = registryDataDir(ctx.config);
    changeServerFile(dataDir, (file, write) => {
      const entry = file.plugins[id];
      if (!entry) throw new IqpError('IQP_E_PLUGIN_MISSING', `No plugin "${printable(id)}" in ${serverFilePath(dataDir)}.`, { plugin: id }, { hint: 'See the plugins with `iqp plugins list`.' });
      const dependents = Object.entries(file.plugins)
        .filter(([other, e]) => other !== id && e.enabled)
        .filter(([other, e]) => {
          const found = manifestOrError(ctx, dataDir, other, e);
          return 'manifest' in found && Object.hasOwn(found.manifest.requires ?? {}, id);
        })
        .map(([other]) => other);
      if (dependents.length > 0) throw new IqpError('IQP_E_PLUGIN_REQUIRED', `${dependents.join(', ')} ${dependents.length === 1 ? 'requires' : 'require'} ${id}; disable ${dependents.length === 1 ? 'it' : 'them'} first.`, { plugin: id, required_by: dependents });
      write({ plugins: { ...file.plugins, [id]: { ...entry, enabled: false } } });
    });
    ctx.out.result({ id, enabled: false }, () => `Disabled ${id}. ${NEXT_START} Its data stays in the registry.`);
  },
};

/** `key=value`: the value as JSON when it parses as JSON, else the string. */
function parseSet(pair: string): [string, unknown] {
  const eq = pair.indexOf('=');
  if (eq <= 0) throw new IqpError('IQP_E_USAGE', `--set takes key=value (got ${JSON.stringify(pair)}).`);
  const raw = pair.slice(eq + 1);
  try {
    return [pair.slice(0, eq), JSON.parse(raw)];
  } catch {
    return [pair.slice(0, eq), raw];
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

const config = {
  define: () =>
    withSettings(
      new Command('config')
        .description('show or change a plugin’s config (checked against its schema before anything is written; secrets are masked)')
        .argument('<id>', 'plugin id')
        .option('--set <key=value>', 'set a key (value parsed as JSON when it parses, else a string; {"$env":"NAME"} reads NAME at server start); repeatable', collect)
        .option('--unset <key>', 'remove a key (back to its default); repeatable', collect),
      'plugins config',
    ),
  async run(ctx: Context, opts: { set?: string[]; unset?: string[] }, id: string): Promise<void> {
    const dataDir = registryDataDir(ctx.config);
    const changed = (opts.set?.length ?? 0) + (opts.unset?.length ?? 0) > 0;
    const { manifest, next } = changeServerFile(dataDir, (file, write) => {
      const entry = file.plugins[id];
      if (!entry) throw new IqpError('IQP_E_PLUGIN_MISSING', `No plugin "${printable(id)}" in ${serverFilePath(dataDir)}.`, { plugin: id }, { hint: 'Enable it first: iqp plugins enable <id|path|package>.' });
      const manifest = readPluginManifest(id, entry.source, dataDir, ctx.cwd);
      const next: Record<string, unknown> = { ...entry.config };
      for (const key of opts.unset ?? []) delete next[key];
      for (const [key, value] of (opts.set ?? []).map(parseSet)) next[key] = value;
      // Refused before anything is written: a wrong value never lands in server.json. Keys still
      // missing are allowed (they are set one at a time) and named below.
      if (changed) validateConfig(manifest, next, null, { partial: true });
      if (changed) write({ plugins: { ...file.plugins, [id]: { ...entry, config: next } } });
      return { manifest, next };
    });
    const shown = maskSecrets(manifest, next);
    ctx.out.result({ id, config: shown, changed }, () => printableLines(JSON.stringify(shown, null, 2)));
    if (changed) ctx.out.note(NEXT_START);
    const problem = configProblem(manifest, next);
    if (problem) ctx.out.warn(`${problem} The server will leave ${id} out until it is set.`);
  },
};

export const pluginsGroup: CommandGroup = {
  group: () => new Command('plugins').description('manage registry plugins in the data directory’s server.json (on the registry host)'),
  commands: [list, enable, disable, config],
};
