/**
 * The iqp command line: builds the Context once, registers one module per command, and owns the
 * single exit path that turns any error into its code, message, hint and exit status.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, IqpError, toIqpError } from './errors.js';
import { loadConfig } from './cli/config.js';
import { type Context, createPrompter } from './cli/context.js';
import { drawableTerminal, Output } from './cli/output.js';
import { PACKAGE_ROOT } from './paths.js';
import type { CommandGroup, CommandModule } from './commands/types.js';

type Entry = CommandModule | CommandGroup;

/**
 * Commands by name, loaded on demand: a run loads only the module of the command it invokes, so
 * `iqp verify` does not pay for the registry server's or client's dependencies (time and memory).
 * Help and unknown commands load them all. The order is the order of `iqp --help`.
 */
export const COMMANDS: ReadonlyArray<readonly [string, () => Promise<Entry>]> = [
  ['init', () => import('./commands/init.js')],
  ['build', () => import('./commands/build.js')],
  ['inspect', () => import('./commands/inspect.js')],
  ['verify', () => import('./commands/verify.js')],
  ['keygen', () => import('./commands/keygen.js')],
  ['publish', () => import('./commands/publish.js')],
  ['pull', () => import('./commands/pull.js')],
  ['deprecate', () => import('./commands/deprecate.js')],
  ['release', async () => (await import('./commands/release.js')).releaseGroup],
  ['keys', async () => (await import('./commands/keys.js')).keysGroup],
  ['audit', () => import('./commands/audit.js')],
  ['server', async () => (await import('./commands/server.js')).serverGroup],
  ['token', async () => (await import('./commands/token.js')).tokenGroup],
  ['plugins', async () => (await import('./commands/plugins.js')).pluginsGroup],
  ['users', async () => (await import('./commands/users.js')).usersGroup],
  ['auth', async () => (await import('./commands/auth.js')).authGroup],
  ['sync', async () => (await import('./commands/sync.js')).syncGroup],
  ['demo', () => import('./commands/demo.js')],
];

/** Global options that take a value, so the word after them is not the command's name. */
const VALUE_OPTIONS = new Set(['--config']);

/** The command a run invokes, if it is a known one: the first word that is not an option. */
export function invokedCommand(argv: readonly string[]): string | null {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (VALUE_OPTIONS.has(arg)) {
      i += 1;
      continue;
    }
    if (arg === '--') return null;
    if (!arg.startsWith('-')) return COMMANDS.some(([name]) => name === arg) ? arg : null;
  }
  return null;
}

/** 'server start' for `iqp server start`: the names below the program. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export interface RunIO {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly stdout?: NodeJS.WriteStream;
  readonly stderr?: NodeJS.WriteStream;
  readonly stdinIsTTY?: boolean;
}

interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
  config?: string;
}

function version(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Where commander writes: help and the version on stdout. Its error lines are dropped, because the
 * single exit path prints the coded error once (as the JSON document with --json); with --json,
 * nothing at all goes to stderr.
 */
function commanderOutput(stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream, json: boolean) {
  return {
    writeOut: (s: string) => void stdout.write(s),
    writeErr: (s: string) => void (json ? undefined : stderr.write(s)),
    outputError: () => {},
  };
}

export async function main(argv: readonly string[], io: RunIO = {}): Promise<number> {
  const env = io.env ?? process.env;
  const cwd = io.cwd ?? process.cwd();
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const ci = Boolean(env['CI']) && env['CI'] !== 'false' && env['CI'] !== '0';
  const interactive = (io.stdinIsTTY ?? Boolean(process.stdin.isTTY)) && !ci;
  const wantsJson = argv.includes('--json');
  let output = new Output({ json: wantsJson, quiet: false, stdout, stderr, decorate: false });
  let exitCode: number = EXIT.ok;

  const program = new Command('iqp')
    .description('Build, verify, publish and serve signed offline content packs.')
    .option('--json', 'print one machine-readable JSON document on stdout')
    .option('-q, --quiet', 'print nothing on stderr but errors')
    .option('--config <file>', 'config file (default: ./iqp.config.json, then ~/.config/iqp/config.json)')
    // Our own --version rather than commander's, which can only print plain text.
    .option('-V, --version', 'output the version number')
    .on('option:version', () => {
      const v = version();
      stdout.write(wantsJson ? `${JSON.stringify({ version: v })}\n` : `${v}\n`);
      throw new CommanderError(EXIT.ok, 'commander.version', v);
    });

  const wire = (mod: CommandModule): Command => {
    const cmd = mod.define();
    cmd.action(async (...actionArgs: unknown[]) => {
      const self = actionArgs[actionArgs.length - 1] as Command;
      const globals = self.optsWithGlobals<GlobalOptions>();
      output = new Output({
        json: Boolean(globals.json),
        quiet: Boolean(globals.quiet),
        stdout,
        stderr,
        decorate: drawableTerminal(stderr) && !ci && !globals.json && !globals.quiet,
        debug: Boolean(env['IQP_DEBUG']),
      });
      const ctx: Context = {
        cwd,
        env,
        out: output,
        // The command's setting flags join IQP_*, the config file and the defaults here, parsed once.
        config: loadConfig(cwd, env, globals.config, { command: commandPath(self), values: self.opts() }),
        interactive,
        prompt: createPrompter(interactive, stderr),
        now: () => new Date(),
      };
      const positional = actionArgs.slice(0, -2);
      const opts = actionArgs[actionArgs.length - 2] as Record<string, unknown>;
      const code = await mod.run(ctx, opts, ...positional);
      exitCode = code ?? EXIT.ok;
    });
    return cmd;
  };

  const invoked = invokedCommand(argv);
  // `iqp --version` needs no command at all; help and unknown words need them all.
  const versionOnly = invoked === null && argv.some((a) => a === '-V' || a === '--version');
  const wanted = versionOnly ? [] : invoked === null ? COMMANDS : COMMANDS.filter(([name]) => name === invoked);
  for (const entry of await Promise.all(wanted.map(([, load]) => load()))) {
    if ('group' in entry) {
      const parent = entry.group();
      for (const mod of entry.commands) parent.addCommand(wire(mod));
      program.addCommand(parent);
    } else {
      program.addCommand(wire(entry));
    }
  }

  // Commander's settings do not pass to commands added with addCommand: every command gets them.
  const written = commanderOutput(stdout, stderr, wantsJson);
  const configure = (cmd: Command): void => {
    cmd.exitOverride().configureOutput(written);
    for (const sub of cmd.commands) configure(sub);
  };
  configure(program);

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.ok;
      // A group run without its subcommand (`iqp keys`): commander showed the help (not with --json).
      const group = err.code === 'commander.help' ? (program.commands.find((c) => c.name() === invoked) ?? program) : null;
      const message = group
        ? `${['iqp', invoked].filter(Boolean).join(' ')} needs a command: ${group.commands.map((c) => c.name()).join(', ')}.`
        : err.message.replace(/^error:\s*/, '');
      const usage = new IqpError('IQP_E_USAGE', message);
      output.error(usage);
      return usage.exitCode;
    }
    const coded = toIqpError(err);
    output.error(coded);
    if (coded.code === 'IQP_E_INTERNAL' && env['IQP_DEBUG'] && err instanceof Error) stderr.write(`${err.stack ?? ''}\n`);
    return coded.exitCode;
  }
}
