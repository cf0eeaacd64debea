/**
 * The database part of a move: every table of the source registry into the same table of the
 * migrated target, by column name, in ONE PostgreSQL transaction (all or nothing: a copy that fails
 * or is interrupted leaves the target's tables empty, so running again works), then checked table
 * by table.
 *
 * Rows the PostgreSQL migrations make themselves: registry_identity gets the source's registry id
 * (its row is frozen by a trigger, which the table's owner disables for this one statement, inside
 * the transaction: no superuser, no session_replication_role), and registry_changes moves to at
 * least the source's counter. Ids are kept (audit, releases…), and each identity or serial column's
 * sequence is set past them. The ledgers are each engine's own: schema_migrations is not copied
 * (versions differ), plugin_migrations is compared (its checksums are of each engine's script).
 */
import type pg from 'pg';
import { IqpError } from '../../src/errors.js';
import { type Converter, converter } from './convert.js';
import { quoteIdent, type SourceRegistry, type SourceTable } from './source.js';
import { type PgTarget, pgFailure, type TargetTable } from './target.js';

/** Tables whose target rows the migrations made: never a sign of a registry already there. */
const IDENTITY = 'registry_identity';
const COUNTER = 'registry_changes';
const PLUGIN_LEDGER = 'plugin_migrations';
const SEEDED = new Set([IDENTITY, COUNTER, PLUGIN_LEDGER]);

/** PostgreSQL takes at most 65535 parameters a statement; batches stay well under it. */
const MAX_PARAMS = 30_000;
const MAX_BATCH = 1000;

export interface TablePlan {
  readonly table: string;
  readonly columns: readonly string[];
  readonly converters: readonly Converter[];
  /** Explicit values for a GENERATED ALWAYS column. */
  readonly overriding: boolean;
  readonly sequences: readonly { readonly column: string; readonly sequence: string }[];
  readonly rows: number;
}

export interface CopyPlan {
  /** In an order that puts every table after those its foreign keys refer to. */
  readonly tables: readonly TablePlan[];
  /** The registry's tables on the target: all must be empty. */
  readonly guarded: readonly string[];
}

const incompatible = (table: string, message: string, details: Record<string, unknown> = {}) =>
  new IqpError('IQP_E_STORE_INCOMPATIBLE', message, { table, ...details }, {
    hint: 'Nothing was copied. A plugin\'s PostgreSQL migrations must make the tables and columns its SQLite ones did; a table no migration made has no place in the new database (copy it out and drop it from the source).',
  });

/** The tables of the target that belong to the registry: those the source has too, and any named after a plugin. */
export function registryTables(source: readonly SourceTable[], target: ReadonlyMap<string, TargetTable>, pluginIds: readonly string[]): string[] {
  const names = new Set(source.map((t) => t.name));
  return [...target.keys()].filter((t) => !SEEDED.has(t) && (names.has(t) || pluginIds.some((id) => t.startsWith(`${id}_`)))).sort();
}

/** Tables in an order where each comes after the tables it refers to (ties and cycles by name). */
function byReferences(tables: readonly string[], target: ReadonlyMap<string, TargetTable>): string[] {
  const pending = new Set(tables);
  const out: string[] = [];
  while (pending.size > 0) {
    const ready = [...pending].filter((t) => ![...(target.get(t)?.references ?? [])].some((r) => pending.has(r))).sort();
    const next = ready.length > 0 ? ready : [[...pending].sort()[0]!];
    for (const t of next) {
      out.push(t);
      pending.delete(t);
    }
  }
  return out;
}

/**
 * How each source table maps onto the migrated target; IQP_E_STORE_INCOMPATIBLE for a table or
 * column the target lacks (never dropped silently), or a target column the source cannot fill.
 */
export function planCopy(source: readonly SourceTable[], target: ReadonlyMap<string, TargetTable>, pluginIds: readonly string[]): CopyPlan {
  const plans = new Map<string, TablePlan>();
  for (const s of source) {
    const t = target.get(s.name);
    if (!t) throw incompatible(s.name, `The registry's table ${s.name} has no counterpart in the PostgreSQL database after its migrations.`);
    if (s.name === PLUGIN_LEDGER || s.name === COUNTER) continue;
    const missing = s.columns.filter((c) => !t.columns.has(c));
    if (missing.length > 0) throw incompatible(s.name, `${s.name} has column(s) ${missing.join(', ')}, which the PostgreSQL table lacks.`, { columns: missing });
    const unfilled = [...t.columns.values()].filter((c) => c.required && !s.columns.includes(c.name)).map((c) => c.name);
    if (unfilled.length > 0) throw incompatible(s.name, `The PostgreSQL table ${s.name} needs column(s) ${unfilled.join(', ')}, which the registry's table lacks.`, { columns: unfilled });
    const columns = s.columns.map((c) => t.columns.get(c)!);
    plans.set(s.name, {
      table: s.name,
      columns: s.columns,
      converters: columns.map((c) => converter({ table: s.name, column: c.name, dataType: c.dataType })),
      overriding: columns.some((c) => c.identity),
      sequences: columns.flatMap((c) => (c.sequence ? [{ column: c.name, sequence: c.sequence }] : [])),
      rows: s.rows,
    });
  }
  return { tables: byReferences([...plans.keys()], target).map((t) => plans.get(t)!), guarded: registryTables(source, target, pluginIds) };
}

/**
 * Refuses a target whose registry tables hold anything: a move never merges into or overwrites a
 * registry. When it holds this very registry (a move that already finished), the hint says so.
 */
export async function refuseOccupied(target: PgTarget, guarded: readonly string[], registryId: string, c?: pg.PoolClient): Promise<void> {
  const occupied = await target.holding(guarded, c);
  if (occupied.length === 0) return;
  const same = (await (c ?? target.pool).query<{ id: string }>(`SELECT registry_id AS id FROM ${IDENTITY}`).catch(() => ({ rows: [] }))).rows[0]?.id === registryId;
  throw new IqpError('IQP_E_TARGET_NOT_EMPTY', `The PostgreSQL database (database_url) already holds a registry's rows, in ${occupied.join(', ')}; migrate-store never merges into or overwrites one.`, { tables: occupied, same_registry: same }, {
    hint: same
      ? `It holds this registry (registry id ${registryId}): a move into it has already finished. Start the registry on it (docs/scaling.md), or empty it to move again.`
      : 'Point database_url at an empty database or schema (an empty one that `iqp server migrate` made is fine).',
  });
}

/** The table's rows in multi-row INSERTs, each value through its column's converter. */
async function insertRows(c: pg.PoolClient, source: SourceRegistry, plan: TablePlan): Promise<void> {
  const head = `INSERT INTO ${quoteIdent(plan.table)} (${plan.columns.map(quoteIdent).join(', ')})${plan.overriding ? ' OVERRIDING SYSTEM VALUE' : ''} VALUES `;
  const size = Math.max(1, Math.min(MAX_BATCH, Math.floor(MAX_PARAMS / plan.columns.length)));
  for (const batch of source.batches(plan.table, plan.columns, size)) {
    const values: unknown[] = [];
    const tuples = batch.map((row) => `(${row.map((v, i) => `$${values.push(plan.converters[i]!(v))}`).join(', ')})`);
    await c.query(head + tuples.join(', '), values);
  }
}

/** Each sequence past the highest id copied, and past the highest SQLite ever handed out (AUTOINCREMENT), so no id is used twice. */
async function moveSequences(c: pg.PoolClient, source: SourceRegistry, plan: TablePlan): Promise<void> {
  for (const { column, sequence } of plan.sequences) {
    await c.query(`SELECT setval($1::regclass, m) FROM (SELECT GREATEST(coalesce(max(${quoteIdent(column)}), 0), $2::bigint) AS m FROM ${quoteIdent(plan.table)}) s WHERE m > 0`, [sequence, source.highestId(plan.table).toString()]);
  }
}

/**
 * The copy, in one transaction on one connection. The change counter's row is locked first, so no
 * registry server on the target writes meanwhile, and the target is checked empty again under it.
 */
export async function copyDatabase(source: SourceRegistry, target: PgTarget, plan: CopyPlan, onTable: (table: string, rows: number) => void): Promise<void> {
  const c = await target.pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => (broken = err);
  c.on('error', onError);
  let table = '';
  try {
    await c.query('BEGIN');
    try {
      await c.query(`SELECT generation FROM ${COUNTER} WHERE singleton = 1 FOR UPDATE`);
      await refuseOccupied(target, plan.guarded, source.registryId(), c);
      for (const t of plan.tables) {
        table = t.table;
        if (t.table === IDENTITY) {
          // The migrations made this registry a random id; it must be the source's. Its triggers
          // refuse any change, so they are off for this statement only, inside the transaction
          // (ALTER TABLE is transactional): a failure anywhere leaves them as they were.
          await c.query(`ALTER TABLE ${IDENTITY} DISABLE TRIGGER USER`);
          await c.query(`DELETE FROM ${IDENTITY}`);
          await insertRows(c, source, t);
          await c.query(`ALTER TABLE ${IDENTITY} ENABLE TRIGGER USER`);
        } else {
          await insertRows(c, source, t);
          await moveSequences(c, source, t);
        }
        onTable(t.table, t.rows);
      }
      table = COUNTER;
      await c.query(`UPDATE ${COUNTER} SET generation = GREATEST(generation, $1::bigint) WHERE singleton = 1`, [source.generation().toString()]);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch((e: unknown) => (broken ??= e as Error));
      throw err;
    }
  } catch (err) {
    throw pgFailure(err, table ? `Copying ${table}` : 'Starting the copy', table ? { table } : {});
  } finally {
    c.off('error', onError);
    c.release(broken);
  }
}

export interface TableCount {
  readonly table: string;
  readonly rows: number;
  readonly target_rows: number | null;
}

/** Row counts of every table on both sides, the registry id, and every plugin migration of the source recorded; IQP_E_INTERNAL naming what differs. */
export async function verifyDatabase(source: SourceRegistry, sourceTables: readonly SourceTable[], target: PgTarget): Promise<TableCount[]> {
  const counts: TableCount[] = [];
  for (const t of sourceTables) counts.push({ table: t.name, rows: t.rows, target_rows: await target.count(t.name) });
  // The target's ledger may also record plugins enabled there before the move (their tables are empty: refuseOccupied).
  const differ = counts.filter((c) => c.table !== PLUGIN_LEDGER && c.rows !== c.target_rows);
  const [identity] = await target.query<{ registry_id: string }>(`SELECT registry_id FROM ${IDENTITY} WHERE singleton = 1`);
  const ledger = new Set((await target.query<{ k: string }>(`SELECT plugin_id || '/' || migration_id AS k FROM ${PLUGIN_LEDGER}`)).map((r) => r.k));
  const unrecorded = [...source.ledger()].flatMap(([id, rows]) => rows.map((r) => `${id}/${r.migration_id}`)).filter((k) => !ledger.has(k));
  const problems = [
    ...differ.map((c) => `${c.table} has ${c.target_rows} row(s), the source ${c.rows}`),
    ...(identity?.registry_id === source.registryId() ? [] : [`the registry id is ${identity?.registry_id ?? 'missing'}, the source's ${source.registryId()}`]),
    ...unrecorded.map((k) => `plugin migration ${k} is not recorded`),
  ];
  if (problems.length > 0) {
    throw new IqpError('IQP_E_INTERNAL', `The copy in PostgreSQL does not match the source: ${problems.join('; ')}.`, { problems }, {
      hint: 'Do not switch to it. Empty the target (a new database, or DROP SCHEMA … CASCADE), and report this with the command you ran; the data directory is unchanged.',
    });
  }
  return counts;
}
