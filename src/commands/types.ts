import type { Command } from 'commander';
import type { Context } from '../cli/context.js';

/** One CLI command: its commander definition and what it does. Returns the exit code (default 0). */
export interface CommandModule {
  define(): Command;
  // Positional arguments arrive as commander parsed them (string, string[] or undefined).
  run(ctx: Context, opts: any, ...args: any[]): Promise<number | void>;
}

/** A command with subcommands (`iqp server start`): the parent and one module per subcommand. */
export interface CommandGroup {
  group(): Command;
  readonly commands: readonly CommandModule[];
}
