/**
 * The pull cursor: opaque to apps (docs/sync-protocol.md), here the user's data epoch and a
 * sequence number. The epoch changes when the user's data is replaced wholesale (an import in
 * replace mode), so every cursor from before answers `reset`.
 */
export interface Cursor {
  readonly epoch: string;
  readonly seq: number;
}

const SHAPE = /^([A-Za-z0-9_-]{8,64})\.(0|[1-9][0-9]{0,15})$/;

export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.epoch}.${c.seq}`).toString('base64url');
}

/** The cursor, or null for anything that is not one this plugin wrote. */
export function decodeCursor(text: string): Cursor | null {
  if (text.length > 200 || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  const m = SHAPE.exec(Buffer.from(text, 'base64url').toString('latin1'));
  if (!m) return null;
  const seq = Number(m[2]);
  return Number.isSafeInteger(seq) ? { epoch: m[1]!, seq } : null;
}
