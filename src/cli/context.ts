/**
 * The Context is built once per run and handed to every command: configuration, output, whether a
 * person is present to answer prompts. Commands never read process.env or process.argv themselves.
 */
import { IqpError } from '../errors.js';
import type { Config } from './config.js';
import type { Output } from './output.js';

export interface Choice {
  readonly value: string;
  readonly name: string;
  readonly description?: string;
}

export interface Prompter {
  input(flag: string, message: string, options?: { default?: string; validate?: (v: string) => string | true }): Promise<string>;
  select(flag: string, message: string, choices: readonly Choice[]): Promise<string>;
  password(flag: string, message: string, options?: { confirm?: boolean }): Promise<string>;
}

export interface Context {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: Output;
  readonly config: Config;
  /** True when stdin is a TTY and CI is unset: only then may a command ask. */
  readonly interactive: boolean;
  readonly prompt: Prompter;
  now(): Date;
}

function missing(flag: string, message: string): IqpError {
  return new IqpError('IQP_E_MISSING_OPTION', `${message.replace(/[:?]\s*$/, '')}: pass ${flag}.`, { flag });
}

/** Prompts with @inquirer/prompts when a person is there; otherwise a usage error naming the flag. */
export function createPrompter(interactive: boolean, output: NodeJS.WritableStream): Prompter {
  const load = async () => import('@inquirer/prompts');
  const ctx = { output };
  return {
    async input(flag, message, options = {}) {
      if (!interactive) throw missing(flag, message);
      const { input } = await load();
      return input({ message, ...(options.default !== undefined ? { default: options.default } : {}), ...(options.validate ? { validate: options.validate } : {}) }, ctx);
    },
    async select(flag, message, choices) {
      if (!interactive) throw missing(flag, message);
      const { select } = await load();
      return select({ message, choices: choices.map((c) => ({ ...c })) }, ctx);
    },
    async password(flag, message, options = {}) {
      if (!interactive) throw missing(flag, message);
      const { password } = await load();
      for (;;) {
        const first = await password({ message, mask: '*' }, ctx);
        if (!options.confirm) return first;
        const second = await password({ message: 'Repeat it', mask: '*' }, ctx);
        if (first === second) return first;
        output.write('The two entries differ; try again.\n');
      }
    },
  };
}

/** SOURCE_DATE_EPOCH (reproducible-builds.org) when set, else the clock. */
export function buildTime(ctx: Context): Date {
  const epoch = ctx.env['SOURCE_DATE_EPOCH'];
  if (epoch === undefined || epoch === '') return ctx.now();
  if (!/^\d{1,12}$/.test(epoch)) throw new IqpError('IQP_E_CONFIG', `SOURCE_DATE_EPOCH must be a number of seconds (got ${JSON.stringify(epoch)}).`);
  return new Date(Number(epoch) * 1000);
}
