/**
 * What `iqp build` warns an author about, and refuses with --strict: a pack that builds but is not
 * what its users should get. A table its template requires but with no rows (a translation pack
 * with no translations), and manifest text still copied from a template or left as iqp init's
 * placeholder (a French pack described as an English translation, a "TODO:" licence).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { didYouMean } from '../did-you-mean.js';
import type { ErrorCode } from '../errors.js';
import { TEMPLATES_DIR } from '../paths.js';
import type { AuthoredManifest } from './format.js';
import { isTemplateName, requirementsFor, TEMPLATE_NAMES } from './requirements.js';

/** Fields an author must write for each pack: iqp init fills them with these placeholders when it cannot ask. */
export const PLACEHOLDERS = {
  description: 'TODO: describe this pack for its users, in its own language.',
  license: 'TODO: the license of this content (e.g. CC-BY-4.0), or remove this field.',
  attribution: 'TODO: credit the authors, translators and sources of this content.',
} as const;

export type AuthoredText = keyof typeof PLACEHOLDERS;
const FIELDS = Object.keys(PLACEHOLDERS) as AuthoredText[];

export interface BuildWarning {
  readonly code: ErrorCode;
  readonly message: string;
  readonly details: Record<string, string>;
}

/**
 * The fields whose template text describes only the template's example. A license is left out: the
 * templates' (CC0-1.0, "Public domain") are real licences an author may well choose, so only its
 * placeholder is a mistake.
 */
const EXAMPLE_FIELDS: readonly AuthoredText[] = ['description', 'attribution'];

/** Each template's description and attribution: field → text → the templates that use it. */
export async function templateTexts(): Promise<Map<AuthoredText, Map<string, string[]>>> {
  const texts = new Map(EXAMPLE_FIELDS.map((f) => [f, new Map<string, string[]>()]));
  for (const template of (await readdir(TEMPLATES_DIR)).sort()) {
    const authored = JSON.parse(await readFile(join(TEMPLATES_DIR, template, 'iqp.json'), 'utf8')) as Record<string, unknown>;
    for (const field of EXAMPLE_FIELDS) {
      const value = authored[field];
      const byText = texts.get(field)!;
      if (typeof value === 'string') byText.set(value, [...(byText.get(value) ?? []), template]);
    }
  }
  return texts;
}

/** "the deck template's" for text from one template (the pack's own first), else "a template's". */
function whose(templates: readonly string[], packageType: string): string {
  if (templates.includes(packageType)) return `the ${packageType} template's`;
  return templates.length === 1 ? `the ${templates[0]} template's` : "a template's";
}

export function authoringWarnings(
  authored: AuthoredManifest,
  tables: ReadonlyArray<{ name: string; row_count: number }>,
  texts: Map<AuthoredText, Map<string, string[]>>,
): BuildWarning[] {
  const warnings: BuildWarning[] = [];
  // Any type is allowed (an app defines its own), but one a typo away from a template's is most
  // likely that template's: without a word, its required tables would go unchecked.
  const type = authored.package_type;
  const suggestion = isTemplateName(type) ? '' : didYouMean(type, TEMPLATE_NAMES);
  if (suggestion) {
    const message = `iqp.json: "package_type" is "${type}", which no template defines, so no template's required tables are checked. ${suggestion}`;
    warnings.push({ code: 'IQP_E_SOURCE_CONFIG', message, details: { field: 'package_type' } });
  }
  for (const { table } of requirementsFor(type)) {
    if (tables.find((t) => t.name === table)?.row_count === 0) {
      warnings.push({
        code: 'IQP_E_REQUIRED_TABLE_EMPTY',
        message: `Table ${table}, which a ${type} pack requires, has no rows (its data file is empty or missing).`,
        details: { table },
      });
    }
  }
  for (const field of FIELDS) {
    const value = authored[field];
    if (value === undefined) continue;
    const templates = texts.get(field)?.get(value);
    const what = templates !== undefined ? `still ${whose(templates, type)} example text` : value.startsWith('TODO:') ? 'still a placeholder' : null;
    if (what) warnings.push({ code: 'IQP_E_SOURCE_CONFIG', message: `iqp.json: "${field}" is ${what}; write this pack's own (users see it).`, details: { field } });
  }
  return warnings;
}
