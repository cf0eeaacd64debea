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
