/** Opaque paging cursors: base64url JSON of the last key seen, so clients cannot depend on their shape. */
import { IqpError } from '../../src/errors.js';

export function encodeCursor(key: string | number): string {
  return Buffer.from(JSON.stringify({ k: key }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string | number {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { k?: unknown };
    if (typeof value.k === 'string' || (typeof value.k === 'number' && Number.isFinite(value.k))) return value.k;
  } catch {
    // fall through
  }
  throw new IqpError('IQP_E_USAGE', 'Invalid paging cursor: pass back the next_cursor of a previous page.');
}
