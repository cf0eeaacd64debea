/**
 * What `iqp build` warns an author about, and refuses with --strict: a pack that builds but is not
 * what its users should get. A table its template requires but with no rows (a translation pack
 * with no translations), and manifest text still copied from a template or left as iqp init's
 * placeholder (a French pack described as an English translation, "Public domain").
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ErrorCode } from '../errors.js';
import { TEMPLATES_DIR } from '../paths.js';
import type { AuthoredManifest } from './format.js';
import { requirementsFor } from './requirements.js';

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

/** Each template's description, license and attribution: field → text → template. */
export async function templateTexts(): Promise<Map<AuthoredText, Map<string, string>>> {
  const texts = new Map(FIELDS.map((f) => [f, new Map<string, string>()]));
  for (const template of await readdir(TEMPLATES_DIR)) {
    const authored = JSON.parse(await readFile(join(TEMPLATES_DIR, template, 'iqp.json'), 'utf8')) as Record<string, unknown>;
    for (const field of FIELDS) {
      const value = authored[field];
      if (typeof value === 'string') texts.get(field)!.set(value, template);
    }
  }
  return texts;
}

export function authoringWarnings(
  authored: AuthoredManifest,
  tables: ReadonlyArray<{ name: string; row_count: number }>,
  texts: Map<AuthoredText, Map<string, string>>,
): BuildWarning[] {
  const warnings: BuildWarning[] = [];
  for (const { table } of requirementsFor(authored.package_type)) {
    if (tables.find((t) => t.name === table)?.row_count === 0) {
      warnings.push({
        code: 'IQP_E_REQUIRED_TABLE_EMPTY',
        message: `Table ${table}, which a ${authored.package_type} pack requires, has no rows (its data file is empty or missing).`,
        details: { table },
      });
    }
  }
  for (const field of FIELDS) {
    const value = authored[field];
    if (value === undefined) continue;
    const template = texts.get(field)?.get(value);
    const what = template !== undefined ? `still the ${template} template's example text` : value.startsWith('TODO:') ? 'still a placeholder' : null;
    if (what) warnings.push({ code: 'IQP_E_SOURCE_CONFIG', message: `iqp.json: "${field}" is ${what}; write this pack's own (users see it).`, details: { field } });
  }
  return warnings;
}
