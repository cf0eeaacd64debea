/**
 * The foreign-key check of a loaded pack, and where its first failure stands in the data files.
 * Tables may refer to tables whose rows come later, so keys are checked once every row is in;
 * SQLite then names a table and a rowid (none at all for WITHOUT ROWID tables), which an author
 * cannot find in a data file. The data file of that table is read again to find the line.
 */
import type Database from 'better-sqlite3';
import { IqpError } from '../errors.js';
import { quoteIdent } from './content.js';
import type { Cell } from './rows.js';
import { readCsvBatches } from './rows-csv.js';
import { readJsonlBatches } from './rows-jsonl.js';
import type { DataFile } from './source.js';

interface Violation {
  readonly table: string;
  readonly rowid: number | null;
  readonly parent: string;
  readonly fkid: number;
}

/** A value as a message shows it: short, and quoted when it is text. */
export function shownValue(value: Cell | undefined): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}

/** The key of one foreign key of `table`: its columns, and the parent's columns they refer to. */
function foreignKey(db: Database.Database, table: string, parent: string, fkid: number): { from: string[]; to: string[] } {
  const parts = (db.prepare(`PRAGMA main.foreign_key_list(${quoteIdent(table)})`).all() as { id: number; seq: number; from: string; to: string | null }[])
    .filter((f) => f.id === fkid)
    .sort((a, b) => a.seq - b.seq);
  const from = parts.map((f) => f.from);
  if (parts.every((f) => f.to !== null)) return { from, to: parts.map((f) => f.to!) };
  // REFERENCES parent with no columns: the parent's primary key.
  const keys = (db.prepare(`PRAGMA main.table_info(${quoteIdent(parent)})`).all() as { name: string; pk: number }[]).filter((c) => c.pk > 0);
  return { from, to: keys.sort((a, b) => a.pk - b.pk).map((c) => c.name) };
}

/** The first row of `data` (in file order) whose key finds no parent row. */
async function firstOrphan(db: Database.Database, data: DataFile, parent: string, key: { from: string[]; to: string[] }, maxLineBytes: number) {
  const exists = db.prepare(`SELECT 1 FROM main.${quoteIdent(parent)} WHERE ${key.to.map((c) => `${quoteIdent(c)} = ?`).join(' AND ')} LIMIT 1`);
  const rows = data.format === 'csv' ? readCsvBatches(data.path, data.file, undefined, undefined, { maxLineBytes }) : readJsonlBatches(data.path, data.file, undefined, { maxLineBytes });
  for await (const batch of rows) {
    for (const row of batch) {
      const values = key.from.map((c) => {
        const i = row.columns.indexOf(c);
        return i < 0 ? null : row.values[i]!;
      });
      // A key with a NULL (or a column the row leaves to its default) refers to nothing.
      if (values.some((v) => v === null)) continue;
      if (!exists.get(values)) return { line: row.line, values };
    }
  }
  return null;
}

/** Refuses content in which a row refers to a missing row (IQP_E_DATA_ROW, with the data file's line where it can be found). */
export async function checkForeignKeys(db: Database.Database, dataFiles: readonly DataFile[], maxLineBytes: number): Promise<void> {
  const violation = db.prepare('PRAGMA main.foreign_key_check').get() as Violation | undefined;
  if (!violation) return;
  const { table, parent } = violation;
  const key = foreignKey(db, table, parent, violation.fkid);
  const data = dataFiles.find((d) => d.table === table);
  const orphan = data && key.from.length === key.to.length ? await firstOrphan(db, data, parent, key, maxLineBytes) : null;
  if (data && orphan) {
    const refers = key.to.map((c, i) => `${c} ${shownValue(orphan.values[i])}`).join(', ');
    throw new IqpError(
      'IQP_E_DATA_ROW',
      `${data.file}:${orphan.line}: the row refers to a row of ${parent} that does not exist (${refers}; foreign key ${key.from.join(', ')} of ${table}).`,
      { file: data.file, line: orphan.line, table, parent },
    );
  }
  const row = violation.rowid === null ? 'A row' : `Row ${violation.rowid}`;
  throw new IqpError('IQP_E_DATA_ROW', `${row} of table ${table} refers to a missing row of ${parent} (foreign key).`, { table, rowid: violation.rowid, parent });
}
