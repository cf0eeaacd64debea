import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { REQUIREMENTS, TEMPLATE_DESCRIPTIONS, TEMPLATE_NAMES, requirementsFor } from './requirements.js';

const templatesDir = fileURLToPath(new URL('../../templates/', import.meta.url));

function schemaColumns(schemaSql: string): Map<string, Set<string>> {
  const db = new Database(':memory:');
  try {
    db.exec(schemaSql);
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[];
    return new Map(tables.map((t) => [t, new Set(db.prepare('SELECT name FROM pragma_table_xinfo(?) WHERE hidden = 0').pluck().all(t) as string[])]));
  } finally {
    db.close();
  }
}

describe('template requirements', () => {
  it('names exactly the template directories', () => {
    const dirs = readdirSync(templatesDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    expect([...dirs].sort()).toEqual([...TEMPLATE_NAMES].sort());
    expect(Object.keys(REQUIREMENTS).sort()).toEqual([...TEMPLATE_NAMES].sort());
    expect(Object.keys(TEMPLATE_DESCRIPTIONS).sort()).toEqual([...TEMPLATE_NAMES].sort());
  });

  it('returns no requirements for a package type without a template', () => {
    expect(requirementsFor('exercises')).toEqual([]);
    expect(requirementsFor('toString')).toEqual([]);
    expect(requirementsFor('deck')).toBe(REQUIREMENTS.deck);
  });

  describe.each(TEMPLATE_NAMES)('templates/%s', (name) => {
    const dir = `${templatesDir}${name}/`;

    it('has the files `iqp init` copies', () => {
      for (const file of ['iqp.json', 'schema.sql', 'README.md', '_gitignore', 'data']) expect(existsSync(dir + file), file).toBe(true);
      expect(readFileSync(`${dir}_gitignore`, 'utf8')).toMatch(/^\*\.iqp$/m);
      const authored = JSON.parse(readFileSync(`${dir}iqp.json`, 'utf8')) as Record<string, unknown>;
      expect(authored['package_type']).toBe(name);
    });

    it('satisfies its own requirements, with one data file per table', () => {
      const tables = schemaColumns(readFileSync(`${dir}schema.sql`, 'utf8'));
      for (const req of REQUIREMENTS[name]) {
        expect(tables.has(req.table), `table ${req.table}`).toBe(true);
        for (const column of req.columns) expect(tables.get(req.table)?.has(column), `${req.table}.${column}`).toBe(true);
      }
      const dataTables = readdirSync(`${dir}data`).map((f) => f.replace(/\.(jsonl|csv)$/, ''));
      expect([...dataTables].sort()).toEqual([...tables.keys()].sort());
    });

    it('documents every required table and column in its README', () => {
      const readme = readFileSync(`${dir}README.md`, 'utf8');
      for (const req of REQUIREMENTS[name]) {
        expect(readme).toContain(`\`${req.table}\``);
        for (const column of req.columns) expect(readme).toContain(`\`${column}\``);
      }
    });
  });
});
