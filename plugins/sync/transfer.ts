/**
 * Export and import of one user's data as NDJSON: a line per live entity in (entity, entity_id)
 * order, then a trailer with the count, the head and a sha256 of the data lines. The lines hold
 * nothing that depends on the account (no sequence numbers), so exporting, importing into an empty
 * account and exporting again gives the same checksum. An import checks every line and the
 * checksum before it changes anything, and then changes everything in one transaction. An export
 * the account changed under while it was written ends without its trailer.
 */
import { createHash } from 'node:crypto';
import type { Core } from './core.js';
import { newId } from './core.js';
import type { Doc } from './merge.js';
import { entityKey } from './store.js';

export const EXPORT_FORMAT = 'iqp-sync-export/1';
const PAGE = 1000;
/** The highest version an import takes (2^50): an account's sequence follows imported versions up, and must stay far below 2^53. */
const MAX_VERSION = 2 ** 50;

export interface Trailer {
  readonly format: string;
  readonly count: number;
  readonly head: number;
  readonly sha256: string;
}

interface Line {
  readonly entity: string;
  readonly entity_id: string;
  readonly version: number;
  readonly payload: Doc;
}

/** The user's head, for a resumed export to check the data has not moved. */
export async function exportHead(core: Core, userId: string): Promise<number> {
  return (await core.store.user(userId))?.head ?? 0;
}

/** The export's lines from `offset` on (the checksum still covers every line), then the trailer; `head`: the one the caller announced. */
export async function* exportLines(core: Core, userId: string, offset = 0, startHead?: number): AsyncGenerator<string> {
  const head = startHead ?? (await exportHead(core, userId));
  const hash = createHash('sha256');
  let count = 0;
  let after: [string, string] | null = null;
  for (;;) {
    const rows = await core.store.live(userId, after, PAGE);
    if (rows.length === 0) break;
    let chunk = '';
    for (const r of rows) {
      // The stored text is the payload as JSON.stringify wrote it: spliced in, not re-serialized.
      const line = `{"entity":${JSON.stringify(r.entity)},"entity_id":${JSON.stringify(r.entity_id)},"version":${r.version},"payload":${r.payload}}\n`;
      hash.update(line);
      if (count >= offset) chunk += line;
      count++;
    }
    if (chunk) yield chunk;
    const last = rows[rows.length - 1]!;
    after = [last.entity, last.entity_id];
  }
  // The lines are read in pages, outside one transaction: a push meanwhile would make a file that
  // mixes states the account never had at once. Such an export ends without its trailer (an
  // import refuses it), and the client starts again.
  const end = await exportHead(core, userId);
  if (end !== head) throw core.ctx.error('IQP_E_SYNC_EXPORT_CHANGED', `The data moved from head ${head} to ${end} while the export was written; start again from the beginning.`);
  const trailer: Trailer = { format: EXPORT_FORMAT, count, head, sha256: hash.digest('hex') };
  yield `${JSON.stringify({ trailer })}\n`;
}

function invalid(core: Core, line: number, message: string): Error {
  return core.ctx.error('IQP_E_SYNC_IMPORT_INVALID', `Line ${line}: ${message} Nothing was imported.`, { details: { line } });
}

const LINE_KEYS = ['entity', 'entity_id', 'version', 'payload'];

/** Reads and checks a whole export (bounded by max_import_bytes); throws naming the first bad line. */
export async function readExport(core: Core, source: AsyncIterable<Uint8Array | string>): Promise<{ lines: Line[]; trailer: Trailer }> {
  const max = core.config.max_import_bytes;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const hash = createHash('sha256');
  const lines: Line[] = [];
  let trailer: Trailer | null = null;
  let size = 0;
  let pending = '';
  let n = 0;
  const take = (text: string) => {
    n++;
    if (trailer) throw invalid(core, n, 'there is text after the trailer.');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw invalid(core, n, 'it is not JSON.');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(core, n, 'it is not a JSON object.');
    const v = value as Record<string, unknown>;
    if (Object.keys(v).length === 1 && 'trailer' in v) {
      const t = v.trailer as Record<string, unknown> | null;
      if (!t || t.format !== EXPORT_FORMAT || !Number.isSafeInteger(t.count) || !Number.isSafeInteger(t.head) || typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256)) {
        throw invalid(core, n, `the trailer is not an ${EXPORT_FORMAT} trailer.`);
      }
      trailer = t as unknown as Trailer;
      return;
    }
    const keys = Object.keys(v);
    if (keys.length !== LINE_KEYS.length || !LINE_KEYS.every((k) => keys.includes(k))) throw invalid(core, n, `a data line has exactly the fields ${LINE_KEYS.join(', ')}.`);
    if (typeof v.entity !== 'string' || !/^[a-z][a-z0-9_]{0,63}$/.test(v.entity)) throw invalid(core, n, 'entity is not an entity name.');
    if (typeof v.entity_id !== 'string' || v.entity_id === '' || codePoints(v.entity_id) > 256 || /[\u0000-\u001f\u007f]/.test(v.entity_id)) throw invalid(core, n, 'entity_id is not a valid id.');
    if (!Number.isSafeInteger(v.version) || (v.version as number) < 1 || (v.version as number) > MAX_VERSION) throw invalid(core, n, `version is not an integer from 1 to ${MAX_VERSION}.`);
    if (typeof v.payload !== 'object' || v.payload === null || Array.isArray(v.payload)) throw invalid(core, n, 'payload is not a JSON object.');
    const entity = core.entities.get(v.entity);
    if (!entity) throw invalid(core, n, `"${v.entity}" is not an entity this registry syncs.`);
    const payloadText = JSON.stringify(v.payload);
    if (Buffer.byteLength(payloadText) > entity.maxPayloadBytes) throw invalid(core, n, `the payload is larger than ${entity.maxPayloadBytes} bytes.`);
    const bad = entity.check(v.payload as Doc);
    if (bad) throw invalid(core, n, bad.message);
    const prev = lines[lines.length - 1];
    if (prev && (prev.entity > v.entity || (prev.entity === v.entity && byCodePoint(prev.entity_id, v.entity_id) >= 0))) throw invalid(core, n, 'lines are not in (entity, entity_id) order, or an entity appears twice.');
    hash.update(`${text}\n`);
    lines.push({ entity: v.entity, entity_id: v.entity_id, version: v.version as number, payload: v.payload as Doc });
  };
  try {
    for await (const piece of source) {
      size += typeof piece === 'string' ? Buffer.byteLength(piece) : piece.byteLength;
      if (size > max) throw core.ctx.error('IQP_E_UPLOAD_TOO_LARGE', `The import is larger than ${max} bytes (max_import_bytes). Nothing was imported.`);
      pending += typeof piece === 'string' ? piece : decoder.decode(piece, { stream: true });
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        take(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
      }
    }
    pending += decoder.decode();
  } catch (err) {
    if (err instanceof TypeError) throw invalid(core, n + 1, 'it is not UTF-8.');
    throw err;
  }
  if (pending !== '') throw invalid(core, n + 1, 'the file does not end with a newline (it may be cut short).');
  const t = trailer as Trailer | null;
  if (!t) throw invalid(core, n + 1, 'the trailer is missing (the file may be cut short).');
  if (t.count !== lines.length) throw invalid(core, n, `the trailer counts ${t.count} lines; the file has ${lines.length}.`);
  const sha = hash.digest('hex');
  if (sha !== t.sha256) throw invalid(core, n, `the checksum does not match (the trailer says ${t.sha256}, the lines give ${sha}): the file was changed or damaged.`);
  return { lines, trailer: t };
}

/**
 * Compares ids by Unicode code point, which is the order of their UTF-8 bytes: the order the export
 * reads them in (SQLite's BINARY and PostgreSQL's "C" collations). JavaScript's < compares UTF-16
 * units, which puts U+10000 and above before U+E000–U+FFFF.
 */
/** A string's length as push's schema measures it (JSON Schema's maxLength counts code points, not UTF-16 units). */
function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Writes a checked export into the user's data: replace (everything else goes; every device resets)
 * or merge (each line a new version). An app's import (`byApp`) needs the account active; an
 * operator's may restore into a disabled one.
 */
export async function importLines(core: Core, userId: string, mode: 'replace' | 'merge', lines: readonly Line[], byApp = false): Promise<{ head: number; imported: number }> {
  const now = core.ctx.clock.nowMs();
  const result = await core.ctx.db.transaction(async (tx) => {
    if (byApp) await core.active(userId, tx);
    const user = await core.ensureUser(userId, tx);
    let head = user.head;
    // What a replace removes, to continue each id's versions above what devices may have seen.
    const before = mode === 'replace' ? await core.store.rows(userId, lines.map((l) => [l.entity, l.entity_id] as const), tx) : null;
    if (mode === 'replace') {
      await core.store.clearRows(userId, tx);
      // A new epoch: every cursor from before answers reset, so devices drop what the import removed.
      // The floor rises to the head: an id the import removed, made again later, starts above every
      // version it had (a version is never above its seq), since nothing of its history is left.
      await tx.run('UPDATE sync_users SET epoch = ?, floor = ? WHERE user_id = ?', [newId(12), Math.max(user.floor, head), userId]);
    }
    let imported = 0;
    for (const l of lines) {
      const payload = JSON.stringify(l.payload);
      const current = before ? before.get(entityKey(l.entity, l.entity_id)) : await core.store.row(userId, l.entity, l.entity_id, tx);
      const unchanged = current !== undefined && !current.deleted && current.payload === payload;
      if (unchanged && mode === 'merge') continue;
      // An id's version never goes down, whatever the file says, so no device holds a version above
      // the registry's (work it queued is merged, not refused); one whose tombstone compaction
      // removed continues above the floor, as a push does. Into an empty account: the file's.
      const version = unchanged ? current.version : current ? Math.max(current.version + 1, l.version) : Math.max(l.version, user.floor + 1);
      // A replace cleared the history: the state it replaced is not kept as a merge base.
      // A row's seq is never below its version (the file's versions may run ahead of this account's
      // sequence), so the floor, which compaction raises to a seq, stays above the versions it removes.
      head = Math.max(head + 1, version);
      await core.store.write(userId, { entity: l.entity, entity_id: l.entity_id, version, seq: head, deleted: 0, payload, device_id: null }, before ? undefined : current, now, tx);
      imported++;
    }
    await core.store.setHead(userId, head, tx);
    return { head, imported };
  }, core.userTx(userId));
  core.notifier.changed(userId);
  return result;
}
