import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes `text` to a new temp file in `dir` (mode 0600) and fsyncs it; the caller renames or
 * links it into place, so a reader never sees a half-written key or mail.
 */
export function writeTemp(dir: string, text: string): string {
  const tmp = join(dir, `.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}
