/** Number and table formatting for the reports (Markdown tables read well on a console too). */

export function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

export function secs(s: number): string {
  return s >= 10 ? s.toFixed(1) : s.toFixed(2);
}

export function ratio(r: number): string {
  return r.toFixed(2);
}

export function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}

export function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function mbPerSec(bytes: number, seconds: number): string {
  return (bytes / 1e6 / seconds).toFixed(1);
}

export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(headers), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

export function passFail(pass: boolean): string {
  return pass ? 'PASS' : 'FAIL';
}

/**
 * "3.21 s (min 3.10, ±4%)": the median, the fastest run (other load on the machine only ever adds
 * time, so the minimum is the least disturbed run) and half the range relative to the median.
 */
export function withSpread(s: { median: number; min: number; spread: number }): string {
  return `${secs(s.median)} s (min ${secs(s.min)}, ±${(s.spread * 50).toFixed(0)}%)`;
}
