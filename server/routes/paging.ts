import type { Request } from 'express';
import { IqpError } from '../../src/errors.js';

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;

/** ?limit=&cursor= with bounds; the cursor is opaque (see stores/cursor.ts). */
export function pageParams(req: Request): { limit: number; cursor: string | null } {
  const rawLimit = req.query['limit'];
  const rawCursor = req.query['cursor'];
  let limit = DEFAULT_PAGE;
  if (rawLimit !== undefined) {
    const n = typeof rawLimit === 'string' && /^\d+$/.test(rawLimit) ? Number(rawLimit) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw new IqpError('IQP_E_USAGE', `limit must be an integer from 1 to ${MAX_PAGE}.`);
    limit = n;
  }
  if (rawCursor !== undefined && (typeof rawCursor !== 'string' || rawCursor === '')) throw new IqpError('IQP_E_USAGE', 'cursor must be a next_cursor value.');
  return { limit, cursor: (rawCursor as string | undefined) ?? null };
}
