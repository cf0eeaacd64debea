/**
 * Range requests as RFC 9110 §14 defines them, for one representation of known size. Only single
 * ranges are served; a multi-range request gets the whole file (200), which §14.2 permits and
 * which every download client handles.
 */
export type RangeResult =
  | { readonly kind: 'full' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' };

const RANGE = /^bytes[ \t]*=[ \t]*(.+)$/i;

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'full' };
  const m = RANGE.exec(header.trim());
  // A Range header we do not understand is ignored (§14.2): serve the whole representation.
  if (!m) return { kind: 'full' };
  const specs = m[1]!.split(',').map((s) => s.trim()).filter(Boolean);
  if (specs.length !== 1) return { kind: 'full' };
  const spec = specs[0]!;
  const single = /^(\d*)-(\d*)$/.exec(spec);
  if (!single || (single[1] === '' && single[2] === '')) return { kind: 'full' };
  const [, first, last] = single as unknown as [string, string, string];
  if (first === '') {
    // Suffix range: the last N bytes.
    const n = Number(last);
    if (!Number.isSafeInteger(n)) return { kind: 'full' };
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (!Number.isSafeInteger(start)) return { kind: 'full' };
  let end = last === '' ? size - 1 : Number(last);
  if (!Number.isSafeInteger(end)) end = size - 1;
  if (last !== '' && end < start) return { kind: 'full' }; // invalid spec: ignore the header
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}

/** If-Range with a strong ETag: the range applies only if the representation is unchanged. */
export function ifRangeAllows(ifRange: string | undefined, etag: string, lastModified: string): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === etag; // weak tags never match (§13.1.5)
  return value === lastModified;
}

/** If-None-Match: true when one of the listed tags matches (weak comparison, §13.1.2). */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}
