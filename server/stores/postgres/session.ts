/**
 * The session settings iqp's PostgreSQL connections need, beside an operator's own. pg lets a
 * database_url's `options` parameter replace the client config's `options` whole, so a URL naming
 * a search_path (or a statement_timeout) would silently drop iqp's: the idle-in-transaction timeout
 * that frees a stalled server's locks, and the plugins' SERIALIZABLE default. Here the URL's options
 * are taken out of it and put first, iqp's after them (the later `-c` of a setting wins).
 */

function decode(s: string): string {
  try {
    // As pg reads the URL (URLSearchParams): '+' is a space.
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

export function sessionConfig(connectionString: string, settings: readonly string[]): { connectionString: string; options: string } {
  const q = connectionString.indexOf('?');
  if (q < 0) return { connectionString, options: settings.join(' ') };
  const own: string[] = [];
  const kept: string[] = [];
  for (const pair of connectionString.slice(q + 1).split('&')) {
    const eq = pair.indexOf('=');
    if (decode(eq < 0 ? pair : pair.slice(0, eq)) === 'options') {
      const value = eq < 0 ? '' : decode(pair.slice(eq + 1)).trim();
      if (value !== '') own.push(value);
    } else {
      kept.push(pair);
    }
  }
  return { connectionString: connectionString.slice(0, q) + (kept.length > 0 ? `?${kept.join('&')}` : ''), options: [...own, ...settings].join(' ') };
}
