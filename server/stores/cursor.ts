/** Opaque paging cursors: base64url JSON of the last key seen, so clients cannot depend on their shape. */
import { IqpError } from '../../src/errors.js';

export function encodeCursor(key: string | number): string {
  return Buffer.from(JSON.stringify({ k: key }), 'utf8').toString('base64url');
}

/**
 * The key a cursor carries, which must be of the listing's key type: a cursor of another listing
 * would otherwise read as "no cursor" (NaN) or as a key that restarts the listing.
 */
export function decodeCursor(cursor: string, kind: 'string'): string;
export function decodeCursor(cursor: string, kind: 'number'): number;
export function decodeCursor(cursor: string, kind: 'string' | 'number'): string | number {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { k?: unknown };
    if (kind === 'string' && typeof value.k === 'string') return value.k;
    if (kind === 'number' && typeof value.k === 'number' && Number.isSafeInteger(value.k)) return value.k;
  } catch {
    // fall through
  }
  throw new IqpError('IQP_E_USAGE', 'Invalid paging cursor: pass back the next_cursor of a previous page.');
}

/**
 * A page from rows fetched with LIMIT limit + 1: the extra row only says there is more. The
 * cursor carries the key of the last item returned, which the next query starts after.
 */
export function pageOf<R, T>(rows: readonly R[], limit: number, map: (row: R) => T, keyOf: (item: T) => string | number): { items: T[]; has_more: boolean; next_cursor: string | null } {
  const items = rows.slice(0, limit).map(map);
  const hasMore = rows.length > limit;
  return { items, has_more: hasMore, next_cursor: hasMore ? encodeCursor(keyOf(items[items.length - 1]!)) : null };
}
