/**
 * A transfer progress line on stderr (`[#######-------]  48%  12.0 MiB of 25.0 MiB  3.1 MiB/s`),
 * drawn through the Output spinner, so it appears only when a person watches a terminal.
 */
import { formatBytes, type Output } from './output.js';

export interface Progress {
  update(done: number, total: number): void;
  /** Replaces the bar with a message (the phase after the transfer). */
  text(message: string): void;
  succeed(message: string): void;
  /** Clears the line (on failure, before the error is printed). */
  stop(): void;
}

const WIDTH = 24;
const REDRAW_MS = 100;

export function progressText(label: string, done: number, total: number, moved: number, seconds: number): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(ratio * WIDTH);
  const rate = seconds > 0 ? `  ${formatBytes(Math.round(moved / seconds))}/s` : '';
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%  ${formatBytes(done)} of ${formatBytes(total)}${rate}`;
}

export async function progress(out: Output, label: string): Promise<Progress> {
  const spinner = await out.spinner(label);
  const started = Date.now();
  let drawn = 0;
  // A resumed transfer starts part-way: the rate counts only the bytes moved in this run.
  let first: number | null = null;
  return {
    update(done, total) {
      first ??= done;
      const now = Date.now();
      if (now - drawn < REDRAW_MS && done < total) return;
      drawn = now;
      spinner.text(progressText(label, done, total, done - first, (now - started) / 1000));
    },
    text: (message) => spinner.text(message),
    succeed: (message) => spinner.succeed(message),
    stop: () => spinner.stop(),
  };
}
