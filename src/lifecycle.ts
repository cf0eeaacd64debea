/**
 * What happens on SIGINT/SIGTERM/SIGHUP. By default: remove temp files being written and exit
 * (130/143/129). A long-running command (the registry server) installs its own graceful stop,
 * which gets STOP_GRACE_MS; a second signal, or a stop that throws or never settles, exits at once
 * (temp files removed all the same). A signal is handled on the event loop, so nothing in iqp may
 * keep the main thread busy without end: long work yields or runs in worker threads (and a spinner
 * never draws on a terminal that reports 0 columns, see cli/output.ts).
 */
import { removePendingTemps } from './atomic.js';

type StopHandler = (signal: NodeJS.Signals) => Promise<number>;

let stopHandler: StopHandler | null = null;

export function onStop(handler: StopHandler | null): void {
  stopHandler = handler;
}

const DEFAULT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** How long a graceful stop may take before the process exits anyway. */
export const STOP_GRACE_MS = 10_000;

export function installSignalHandlers(stderr: NodeJS.WritableStream = process.stderr, options: { graceMs?: number } = {}): void {
  const graceMs = options.graceMs ?? STOP_GRACE_MS;
  let stopping = false;
  const exitNow = (code: number | undefined): never => {
    removePendingTemps();
    process.exit(code);
  };
  for (const signal of Object.keys(DEFAULT_CODES) as NodeJS.Signals[]) {
    process.on(signal, () => {
      // A second signal while stopping: give up waiting.
      if (stopping) exitNow(DEFAULT_CODES[signal]);
      stopping = true;
      const handler = stopHandler;
      if (handler) {
        // Not unref'd: it must also end a stop whose pending promise holds nothing else alive.
        setTimeout(() => exitNow(DEFAULT_CODES[signal]), graceMs);
        let stopped: Promise<number>;
        try {
          stopped = handler(signal);
        } catch (err) {
          stopped = Promise.reject(err);
        }
        stopped.then(exitNow, () => exitNow(DEFAULT_CODES[signal]));
        return;
      }
      try {
        stderr.write(`\ninterrupted (${signal}); unfinished files were removed (a partial download is kept to resume)\n`);
      } catch {
        // stderr may be gone (a closed pipe); exiting matters more than saying so
      }
      exitNow(DEFAULT_CODES[signal]);
    });
  }
}

/**
 * A reader that goes away (`iqp build --help | head -1`) makes the next write fail with EPIPE,
 * which node raises as an unhandled 'error' event: a stack trace for a normal use of a pipe. Such
 * output is simply dropped; the command finishes and exits with its own status. Other stream
 * errors are still raised.
 */
export function quietOnClosedPipes(streams: readonly NodeJS.WritableStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
      throw err;
    });
  }
}
