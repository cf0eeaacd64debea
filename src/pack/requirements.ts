import { IqpError } from '../errors.js';
/**
 * What each template's apps read from content.sqlite. `iqp build` refuses a pack whose schema lacks
 * any of these (IQP_E_TEMPLATE_REQUIREMENT), so an app can open every pack of its type without
 * checking columns first. Each list is also documented in templates/<name>/README.md, and every
 * template's schema.sql satisfies its own list (held by a test).
 *
 * Only presence is required: the table may be empty and may have more columns. Optional tables of a
 * template (footnotes, word_segments, nutrients, card_media) are deliberately absent here.
 */

export const TEMPLATE_NAMES = ['translation', 'recitation', 'dataset', 'deck'] as const;

export type TemplateName = (typeof TEMPLATE_NAMES)[number];

export interface TableRequirement {
  readonly table: string;
  readonly columns: readonly string[];
}

/** One line each, shown by `iqp init` when it asks for a template. */
export const TEMPLATE_DESCRIPTIONS: Record<TemplateName, string> = {
  translation: 'Quran translation: surah names and the text of each ayah in one language, with optional footnotes.',
  recitation: 'Quran recitation: reciters, one audio file per ayah (URL, size, SHA-256), optional word timings.',
  dataset: 'Canonical library for the health planner: foods by category with calories and macros, optional nutrients.',
  deck: 'Flash cards: decks of cards with front, back, hint and tags, optional audio and images.',
};

export const REQUIREMENTS: Record<TemplateName, readonly TableRequirement[]> = {
  translation: [
    { table: 'surahs', columns: ['number', 'name_arabic', 'name_transliterated', 'ayah_count'] },
    { table: 'translations', columns: ['surah', 'ayah', 'text'] },
  ],
  recitation: [
    { table: 'reciters', columns: ['id', 'name', 'style', 'base_url'] },
    { table: 'audio_files', columns: ['reciter_id', 'surah', 'ayah', 'url', 'mime_type', 'duration_ms', 'size_bytes', 'sha256'] },
  ],
  dataset: [
    { table: 'categories', columns: ['id', 'name', 'position'] },
    {
      table: 'foods',
      columns: ['id', 'name', 'category_id', 'serving_g', 'serving_label', 'kcal', 'protein_g', 'fat_g', 'carbs_g'],
    },
  ],
  deck: [
    { table: 'decks', columns: ['id', 'title', 'position'] },
    { table: 'cards', columns: ['id', 'deck_id', 'position', 'front', 'back', 'hint', 'tags'] },
  ],
};

export function isTemplateName(value: string): value is TemplateName {
  return (TEMPLATE_NAMES as readonly string[]).includes(value);
}

/** The requirements of a package type; none for a type no template defines (a custom schema). */
export function requirementsFor(packageType: string): readonly TableRequirement[] {
  return isTemplateName(packageType) ? REQUIREMENTS[packageType] : [];
}

/**
 * Checks a content database's tables (names and columns, e.g. manifest.tables) against its package
 * type's requirements: build refuses such content, verify refuses such packs.
 */
export function checkRequirements(packageType: string, tables: ReadonlyArray<{ name: string; columns: readonly string[] }>): void {
  for (const req of requirementsFor(packageType)) {
    const table = tables.find((t) => t.name === req.table);
    if (!table) {
      throw new IqpError('IQP_E_TEMPLATE_REQUIREMENT', `A ${packageType} pack needs a table named ${req.table}.`, { table: req.table });
    }
    const missing = req.columns.filter((c) => !table.columns.includes(c));
    if (missing.length > 0) {
      throw new IqpError('IQP_E_TEMPLATE_REQUIREMENT', `Table ${req.table} of a ${packageType} pack needs column(s) ${missing.join(', ')}.`, {
        table: req.table,
        columns: missing,
      });
    }
  }
}
