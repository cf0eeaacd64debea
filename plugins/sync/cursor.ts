/**
 * The pull cursor: opaque to apps (docs/sync-protocol.md), here the user's data epoch, a sequence
 * number and, when the sequence is below the compaction floor (a snapshot paging from the start),
 * the floor it was handed out under. The epoch changes when the user's data is replaced wholesale
 * (an import in replace mode), so every cursor from before answers `reset`.
 */
export interface Cursor {
  readonly epoch: string;
  readonly seq: number;
  /** The floor when the cursor was written, present only when `seq` was below it. */
  readonly floor?: number;
}

const SHAPE = /^([A-Za-z0-9_-]{8,64})\.(0|[1-9][0-9]{0,15})(?:\.([1-9][0-9]{0,15}))?$/;

export function encodeCursor(c: Cursor): string {
  const floor = c.floor !== undefined && c.seq < c.floor ? `.${c.floor}` : '';
  return Buffer.from(`${c.epoch}.${c.seq}${floor}`).toString('base64url');
}

/** The cursor, or null for anything that is not one this plugin wrote. */
export function decodeCursor(text: string): Cursor | null {
  if (text.length > 200 || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  const m = SHAPE.exec(Buffer.from(text, 'base64url').toString('latin1'));
  if (!m) return null;
  const seq = Number(m[2]);
  const floor = m[3] === undefined ? undefined : Number(m[3]);
  if (!Number.isSafeInteger(seq) || (floor !== undefined && (!Number.isSafeInteger(floor) || floor <= seq))) return null;
  return floor === undefined ? { epoch: m[1]!, seq } : { epoch: m[1]!, seq, floor };
}

/**
 * Whether history after the cursor may be gone. Compaction removes tombstones and old versions
 * only at or below the floor, and only ever raises it; so a cursor at or above the floor is whole,
 * and one below it (a snapshot from the start, paging through rows older than the floor) is whole
 * while the floor has not moved since it was written. Seq 0, the start of a snapshot, always is.
 */
export function expired(c: Cursor, floor: number): boolean {
  return c.seq > 0 && c.seq < floor && c.floor !== floor;
}
