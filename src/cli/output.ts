/**
 * stdout carries results, stderr carries people-facing progress. With --json, stdout gets exactly
 * one JSON document (the result or the error) and nothing else; spinners only draw on a TTY.
 */
import type { Writable } from 'node:stream';
import type { IqpError } from '../errors.js';

export interface Spinner {
  text(message: string): void;
  succeed(message: string): void;
  fail(message?: string): void;
  stop(): void;
}

const silentSpinner: Spinner = { text() {}, succeed() {}, fail() {}, stop() {} };

/**
 * Whether a person watches this stream on a terminal that can be drawn on. A terminal that reports
 * 0 columns (`script -qc`, some CI wrappers) cannot: a spinner's line count would divide by zero
 * and redraw without end.
 */
export function drawableTerminal(stream: { isTTY?: boolean; columns?: number }): boolean {
  return Boolean(stream.isTTY) && (stream.columns ?? 0) > 0;
}

export interface OutputOptions {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable & { isTTY?: boolean; columns?: number };
  /** Spinners and progress only when a person watches stderr. */
  readonly decorate: boolean;
  /** IQP_DEBUG: one line per registry request on stderr (never a secret). */
  readonly debug?: boolean;
}

export class Output {
  #resultWritten = false;
  constructor(readonly options: OutputOptions) {}

  get json(): boolean {
    return this.options.json;
  }

  /** The command's result: `human()` for people, `data` as the one JSON document. */
  result(data: unknown, human: () => string): void {
    if (this.#resultWritten) throw new Error('a command wrote two results');
    this.#resultWritten = true;
    if (this.options.json) this.options.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    else {
      const text = human();
      if (text) this.options.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** A note for people on stderr (never with --quiet). */
  note(message: string): void {
    if (!this.options.quiet && !this.options.json) this.options.stderr.write(`${printableLines(message)}\n`);
  }

  debug(message: string): void {
    if (this.options.debug) this.options.stderr.write(`debug: ${message}\n`);
  }

  /** A warning for people; with --json the result carries what matters and stderr stays empty. */
  warn(message: string): void {
    if (!this.options.quiet && !this.options.json) this.options.stderr.write(`warning: ${printableLines(message)}\n`);
  }

  error(err: IqpError): void {
    if (this.options.json) {
      if (!this.#resultWritten) this.options.stdout.write(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
      this.#resultWritten = true;
      return;
    }
    this.options.stderr.write(`error ${err.code}: ${printableLines(err.message)}\n  hint: ${printableLines(err.hint)}\n`);
  }

  async spinner(text: string): Promise<Spinner> {
    const stream = this.options.stderr;
    if (!this.options.decorate || !drawableTerminal(stream)) return silentSpinner;
    const { default: ora } = await import('ora');
    const spin = ora({ text, stream: stream as NodeJS.WritableStream }).start();
    // Shrunk to 0 columns while spinning: stop drawing (and clearing) at once, before the next frame.
    const onResize = (): void => {
      if (!drawableTerminal(stream)) spin.isEnabled = false;
    };
    stream.on('resize', onResize);
    const done = (): void => void stream.off('resize', onResize);
    return {
      text: (message) => {
        spin.text = message;
      },
      succeed: (message) => {
        done();
        spin.succeed(message);
      },
      fail: (message) => {
        done();
        spin.fail(message);
      },
      stop: () => {
        done();
        spin.stop();
      },
    };
  }
}

/** Characters that steer a terminal or reorder the text around them: C0 and C1 controls, DEL, bidi controls, line separators. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Untrusted text (a pack's manifest, a registry's answer) made safe to print for a person: each
 * control or bidi character is shown as an escape (\x1b, \n, \u{202e}) instead of acting on the
 * terminal. Not for --json output, which JSON already escapes and must stay exact.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`);
  });
}

/** printable() line by line: messages may be several lines on purpose (a list of failures). */
export function printableLines(text: string): string {
  return text.split('\n').map(printable).join('\n');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[i]}`;
}

/**
 * An integer with thousands separators, 1,234,567. Not toLocaleString: its first call loads ICU's
 * number formatting, about 20 ms of every command's start-up.
 */
export function formatCount(n: number): string {
  const digits = String(Math.abs(Math.round(n)));
  const grouped = digits.replace(/\B(?=(\d{3})+$)/g, ',');
  return n < 0 && digits !== '0' ? `-${grouped}` : grouped;
}

export function formatRate(count: number, seconds: number, unit: string): string {
  if (seconds <= 0) return `${count} ${unit}`;
  return `${formatCount(count / seconds)} ${unit}/s`;
}
