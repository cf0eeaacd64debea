/**
 * The README's configuration table, rendered from the settings table (settings.ts): one row per
 * setting, then the variables read elsewhere. `node dist/scripts/settings-table.js` writes it into
 * the README between the markers below; src/cli/settings.test.ts holds the two equal.
 */
import { longFlag } from './config.js';
import { OTHER_VARIABLES, type Setting, SETTINGS } from './settings.js';

export const TABLE_START = '<!-- settings table: generated from src/cli/settings.ts by node dist/scripts/settings-table.js -->';
export const TABLE_END = '<!-- end of settings table -->';

const code = (s: string): string => `\`${s}\``;
const cell = (s: string): string => s.replaceAll('|', '\\|');

/** `--registry` (publish, keys add|list|remove): subcommands of one group are written together. */
function flagCell(s: Setting): string {
  if (!s.flag) return '—';
  const groups = new Map<string, string[]>();
  for (const command of s.commands ?? []) {
    const [group, sub] = command.split(' ') as [string, string | undefined];
    groups.set(group, [...(groups.get(group) ?? []), ...(sub ? [sub] : [])]);
  }
  const where = [...groups].map(([group, subs]) => (subs.length ? `${group} ${subs.join('|')}` : group)).join(', ');
  return `${code(longFlag(s.flag))}${s.adds ? ' (adds)' : ''}: ${cell(where)}`;
}

function defaultCell(s: Setting): string {
  if (s.defaultText !== undefined) return /^[.~/]/.test(s.defaultText) ? code(s.defaultText) : cell(s.defaultText);
  if (s.default === null || typeof s.default === 'function') return 'none';
  return code(s.type.show(s.default as never));
}

function meaning(s: Setting): string {
  const text = s.doc ?? `${s.help[0]!.toUpperCase()}${s.help.slice(1)}.`;
  // Ranges come from the type, so the README cannot say another than the parser enforces.
  return cell(/\d–\d/.test(s.type.label) && !text.includes(s.type.label) ? `${text} ${s.type.label}.` : text);
}

export function renderSettingsTable(): string {
  const rows = (Object.values(SETTINGS) as Setting[]).map((s) => {
    const env = s.env ? `${code(s.env)}${s.type.separator ? ` (${code(s.type.separator)}-separated)` : ''}` : '—';
    return `| ${s.key ? code(s.key) : '—'} | ${env} | ${flagCell(s)} | ${defaultCell(s)} | ${meaning(s)} |`;
  });
  const others = OTHER_VARIABLES.map((v) => `| — | ${code(v.env)} | — | ${cell(v.default)} | ${cell(v.doc)} |`);
  return [TABLE_START, '| config key | environment | flag | default | meaning |', '|---|---|---|---|---|', ...rows, ...others, TABLE_END].join('\n');
}

/** The README with its table replaced by `table`; null when the markers are missing. */
export function withTable(readme: string, table: string): string | null {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) return null;
  return `${readme.slice(0, start)}${table}${readme.slice(end + TABLE_END.length)}`;
}
