/**
 * The commander options of the settings a command takes, generated from the table in settings.ts:
 * the flag, its help with where else the value can come from, and a repeatable flag's collector.
 * Values are parsed in config.ts, with the environment's and the file's, so every source goes
 * through the same parser; commands read them typed from `ctx.config`.
 */
import { type Command, Option } from 'commander';
import { takesFlag } from './config.js';
import { int, type Source } from './setting-types.js';
import { type Setting, SETTINGS } from './settings.js';

function defaultText(s: Setting): string {
  if (s.defaultText !== undefined) return s.defaultText;
  return typeof s.default === 'function' || s.default === null ? 'none' : s.type.show(s.default as never);
}

/** Where else the value comes from, as --help says it. */
export function flagHelp(s: Setting): string {
  const elsewhere = [s.env, s.key ? `the config file’s "${s.key}"` : undefined].filter(Boolean).join(', ');
  if (s.adds) return `${s.help}; adds to ${elsewhere}`;
  return `${s.help} (default: ${elsewhere ? `${elsewhere}, or ` : ''}${defaultText(s)})`;
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

/** Adds the options of every setting `command` ('build', 'server start') takes, in the table's order. */
export function withSettings(cmd: Command, command: string): Command {
  for (const s of Object.values(SETTINGS) as Setting[]) {
    if (!takesFlag(s, command)) continue;
    const option = new Option(s.flag, flagHelp(s));
    if (s.adds) option.argParser(collect);
    cmd.addOption(option);
  }
  return cmd;
}

/** The parser of a command's own integer flag (not a setting): canonical decimal in a range, else IQP_E_USAGE naming it. */
export function intFlag(flag: string, min: number, max: number): (raw: string) => number {
  const type = int(min, max);
  const from: Source = { kind: 'flag', name: flag, base: '' };
  return (raw) => type.parse(raw, from);
}
