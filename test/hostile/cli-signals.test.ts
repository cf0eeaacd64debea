/**
 * SIGTERM always ends an iqp process and removes the temp files it was writing: when a graceful
 * stop is pending and a second signal comes, when the stop throws, and when it never settles. Each
 * case is a real node process running the built lifecycle module with a real temp file.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../e2e/helpers.js';

type Stop = 'pending' | 'throws' | 'rejects' | 'never';

/** A process with a tracked temp file and a stop handler that behaves as `stop` says; it prints "ready", and "stopping" once its handler runs. */
function child(stop: Stop, graceMs: number) {
  const temp = join(tempDir(), 'half-written.tmp');
  const lifecycle = join(ROOT, 'dist', 'src', 'lifecycle.js');
  const atomic = join(ROOT, 'dist', 'src', 'atomic.js');
  const script = `
    import { writeFileSync } from 'node:fs';
    const { installSignalHandlers, onStop } = await import(${JSON.stringify(lifecycle)});
    const { trackTemp } = await import(${JSON.stringify(atomic)});
    writeFileSync(${JSON.stringify(temp)}, 'partial');
    trackTemp(${JSON.stringify(temp)});
    installSignalHandlers(process.stderr, { graceMs: ${graceMs} });
    onStop((signal) => {
      process.stdout.write('stopping\\n');
      if (${JSON.stringify(stop)} === 'throws') throw new Error('the stop failed');
      if (${JSON.stringify(stop)} === 'rejects') return Promise.reject(new Error('the stop failed'));
      // pending: waits for a second signal; never: holds nothing alive and never settles.
      if (${JSON.stringify(stop)} === 'pending') setInterval(() => {}, 1000);
      return new Promise(() => {});
    });
    setInterval(() => {}, 1000);
    process.stdout.write('ready\\n');
  `;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: [string, () => void][] = [];
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const [word, done] of waiters) if (stdout.includes(word)) done();
  });
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const said = (word: string) => new Promise<void>((r) => (stdout.includes(word) ? r() : waiters.push([word, r])));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('close', (code, signal) => r({ code, signal })));
  return { proc, temp, said, exited, stderr: () => stderr };
}

describe('SIGTERM during a graceful stop', () => {
  it('a second signal ends a stop that is still pending, removing the temp file', async () => {
    const c = child('pending', 600_000);
    await c.said('ready');
    expect(existsSync(c.temp)).toBe(true);
    c.proc.kill('SIGTERM');
    await c.said('stopping');
    c.proc.kill('SIGTERM');
    expect(await c.exited).toEqual({ code: 143, signal: null });
    expect(existsSync(c.temp)).toBe(false);
  });

  for (const stop of ['throws', 'rejects'] as const) {
    it(`a stop that ${stop} still ends the process with 143, removing the temp file`, async () => {
      const c = child(stop, 600_000);
      await c.said('ready');
      c.proc.kill('SIGTERM');
      expect(await c.exited, c.stderr()).toEqual({ code: 143, signal: null });
      expect(c.stderr()).not.toMatch(/\n\s+at /);
      expect(existsSync(c.temp)).toBe(false);
    });
  }

  it('a stop that never settles ends after the grace period, removing the temp file', async () => {
    const c = child('never', 200);
    await c.said('ready');
    c.proc.kill('SIGTERM');
    expect(await c.exited).toEqual({ code: 143, signal: null });
    expect(existsSync(c.temp)).toBe(false);
  });
});
