/** Small file helpers for generated corpora: buffered writes and "generated once" markers. */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Appends text to a file through a 4 MiB buffer (the corpora are hundreds of MB). */
export class BufferedWriter {
  readonly #fd: number;
  readonly #buf = Buffer.allocUnsafe(4 * 1024 * 1024);
  #len = 0;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.#fd = openSync(path, 'w');
  }

  write(text: string): void {
    if (text.length * 3 > this.#buf.length - this.#len) this.flush();
    if (text.length * 3 > this.#buf.length) {
      writeSync(this.#fd, text);
      return;
    }
    this.#len += this.#buf.write(text, this.#len, 'utf8');
  }

  flush(): void {
    let off = 0;
    while (off < this.#len) off += writeSync(this.#fd, this.#buf, off, this.#len - off);
    this.#len = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.#fd);
  }
}

/**
 * Runs `make(tmp)` unless `target` exists with a marker naming `version`; the result is moved into
 * place only when complete, so an interrupted generation is redone rather than half-used.
 */
export async function generateOnce(target: string, version: string, make: (tmp: string) => Promise<void> | void): Promise<boolean> {
  const marker = `${target}.generated`;
  if (existsSync(target) && existsSync(marker) && readFileSync(marker, 'utf8') === version) return false;
  rmSync(target, { recursive: true, force: true });
  rmSync(marker, { force: true });
  const tmp = `${target}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(dirname(target), { recursive: true });
  await make(tmp);
  renameSync(tmp, target);
  writeFileSync(marker, version);
  return true;
}

/** RFC 4180 field: NULL is an empty unquoted field; anything that needs it is quoted. */
export function csvField(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  if (value === '' || /[",\r\n]/.test(value)) return `"${value.replaceAll('"', '""')}"`;
  return value;
}

export function csvLine(values: ReadonlyArray<string | number | null>): string {
  return `${values.map(csvField).join(',')}\n`;
}
