/**
 * A pull: the latest state of every entity changed after the device's cursor, in sequence order,
 * paged by count and bytes, from the (user, seq) index so its cost does not grow with history.
 *
 * Each page reads the head first and then only changes at or below it: a push landing in between
 * moves its rows above that head, where the next page finds them, so a page never skips a row and
 * a row appears once per state. When nothing is left below the head, the cursor becomes the head.
 */
import type { Core } from './core.js';
import { decodeCursor, encodeCursor, expired } from './cursor.js';
import type { PullBodyT, PullResponseT } from './routes/schemas.js';
import type { ConflictRow, DeviceRow, EntityRow } from './store.js';
import { conflictView } from './views.js';

type Reason = NonNullable<PullResponseT['reset']>['reason'];

/** A page as stored: rows keep their payloads as JSON text, spliced into the answer unparsed. */
export interface Page {
  readonly changes: EntityRow[];
  readonly conflicts: ConflictRow[];
  cursor: string;
  has_more: boolean;
  readonly head: number;
  reset?: { reason: Reason };
}

export interface PullOutcome {
  readonly page: Page;
  readonly reset: Reason | null;
}

/** Characters of JSON text per piece of a pull's answer: each piece stays a regular heap object. */
const PIECE_CHARS = 32 * 1024;

/**
 * The page as the protocol's JSON, each payload spliced in as stored (it was written by
 * JSON.stringify), in pieces of about PIECE_CHARS written one after another. A page is up to
 * max_pull_bytes of text: built as one string it would be a large object of its own (fresh memory
 * for every pull, and another copy when the socket flattens it); pieces reuse the young heap.
 */
export function pageJson(p: Page): string[] {
  const pieces: string[] = [];
  let rows: string[] = [];
  let size = 0;
  for (const r of p.changes) {
    const row = `{"entity":${JSON.stringify(r.entity)},"entity_id":${JSON.stringify(r.entity_id)},"op":"${r.deleted ? 'delete' : 'upsert'}","payload":${r.deleted ? 'null' : r.payload},"version":${r.version},"seq":${r.seq}}`;
    rows.push(row);
    size += row.length + 1;
    if (size >= PIECE_CHARS) {
      pieces.push(`${pieces.length === 0 ? '{"changes":[' : ','}${rows.join(',')}`);
      rows = [];
      size = 0;
    }
  }
  const rest = JSON.stringify({ conflicts: p.conflicts.map(conflictView), cursor: p.cursor, has_more: p.has_more, head: p.head, ...(p.reset ? { reset: p.reset } : {}) });
  const last = rows.length > 0 ? rows.join(',') : '';
  pieces.push(`${pieces.length === 0 ? '{"changes":[' : last ? ',' : ''}${last}],${rest.slice(1)}`);
  return pieces;
}

async function page(core: Core, userId: string, epoch: string, after: number, limit: number, maxBytes: number): Promise<Page> {
  const user = await core.store.user(userId);
  const head = user?.head ?? 0;
  const rows = await core.store.changes(userId, after, head, limit + 1);
  const conflicts = await core.store.conflictsBySeq(userId, after, head, limit + 1);
  const out: Page = { changes: [], conflicts: [], cursor: '', has_more: false, head };
  let r = 0;
  let c = 0;
  let bytes = 0;
  let last = after;
  while (r < rows.length || c < conflicts.length) {
    const taken = out.changes.length + out.conflicts.length;
    if (taken >= limit || (taken > 0 && bytes >= maxBytes)) break;
    const row: EntityRow | undefined = rows[r];
    const conflict: ConflictRow | undefined = conflicts[c];
    if (row && (!conflict || row.seq < conflict.seq)) {
      out.changes.push(row);
      bytes += row.payload?.length ?? 0;
      last = row.seq;
      r++;
    } else {
      out.conflicts.push(conflict!);
      bytes += (conflict!.winner?.length ?? 0) + (conflict!.loser?.length ?? 0) + (conflict!.base?.length ?? 0);
      last = conflict!.seq;
      c++;
    }
  }
  out.has_more = r < rows.length || c < conflicts.length;
  out.cursor = encodeCursor({ epoch, seq: out.has_more ? last : head, floor: user?.floor ?? 0 });
  return out;
}

/**
 * How often a device's acknowledged cursor may move forward. Recording it is a commit, and on the
 * embedded registry a commit makes every other worker process drop its page cache: a device paging
 * through a feed would cause one per page. Recorded less often, the ack is older than the device's
 * cursor, which only keeps more history for a while (compaction keeps what the oldest ack needs).
 */
export const ACK_EVERY_MS = 10_000;
/** How often a device that keeps pulling at the same cursor is marked seen (retention counts from it). */
const SEEN_EVERY_MS = 60_000;

/** Whether a pull at cursor `after` records it as the device's ack: new devices and acks moving back at once, forward moves at most every ACK_EVERY_MS. */
export function ackDue(device: DeviceRow | undefined, after: number, nowMs: number): boolean {
  if (!device || after < device.acked) return true;
  if (after > device.acked && nowMs - device.acked_ms >= ACK_EVERY_MS) return true;
  return nowMs - device.last_seen_ms > SEEN_EVERY_MS;
}

/** `waiting` is called when the pull, finding nothing new, begins to wait for a change. */
export async function pull(core: Core, userId: string, body: PullBodyT, signal: AbortSignal, waiting: () => void = () => {}): Promise<PullOutcome> {
  const { config } = core;
  const db = core.ctx.db;
  // Pulls mostly only read: the device and user rows are written when new, and the ack when it moved.
  await core.active(userId);
  const device = await core.store.device(body.device_id);
  const known = await core.store.user(userId);
  // The account's or the device's first sync: their rows are made under the account's lock, with
  // the account checked inside, so a deletion running meanwhile removes them or this is refused.
  const user =
    known && device?.user_id === userId
      ? known
      : await db.transaction(async (tx) => {
          await core.active(userId, tx);
          const made = await core.ensureUser(userId, tx);
          await core.claimDevice(userId, body.device_id, null, tx);
          return made;
        }, core.userTx(userId));
  const limit = body.limit ?? 500;
  const maxBytes = Math.min(body.max_bytes ?? 1_048_576, config.max_pull_bytes);
  let after = 0;
  if (body.cursor !== null) {
    const cursor = decodeCursor(body.cursor);
    let reason: Reason | null = null;
    if (!cursor) reason = 'cursor_unknown';
    else if (cursor.epoch !== user.epoch) reason = 'data_replaced';
    else if (cursor.seq > user.head) reason = 'cursor_unknown';
    else if (expired(cursor, user.floor)) reason = 'cursor_expired';
    if (reason) {
      const reset: Page = { changes: [], conflicts: [], cursor: encodeCursor({ epoch: user.epoch, seq: 0 }), has_more: true, head: user.head, reset: { reason } };
      return { page: reset, reset: reason };
    }
    after = cursor!.seq;
    // The cursor a device sends is what it has applied: history at or below every active device's is no longer needed.
    const now = core.ctx.clock.nowMs();
    if (ackDue(device, after, now)) await core.store.ack(body.device_id, userId, after, now);
  }
  let found = await page(core, userId, user.epoch, after, limit, maxBytes);
  const wait = Math.min(body.wait ?? 0, config.max_wait_s);
  if (found.changes.length === 0 && found.conflicts.length === 0 && wait > 0) {
    const head = found.head;
    const moved = async () => ((await core.store.user(userId))?.head ?? 0) > head;
    waiting();
    if (await core.notifier.wait(userId, wait * 1000, signal, moved)) found = await page(core, userId, user.epoch, after, limit, maxBytes);
  }
  return { page: found, reset: null };
}
