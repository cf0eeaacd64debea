/**
 * What happens on SIGINT/SIGTERM/SIGHUP. By default: remove temp files being written and exit
 * (130/143/129). A long-running command (the registry server) installs its own graceful stop.
 */
import { removePendingTemps } from './atomic.js';

type StopHandler = (signal: NodeJS.Signals) => Promise<number>;

let stopHandler: StopHandler | null = null;

export function onStop(handler: StopHandler | null): void {
  stopHandler = handler;
}

const DEFAULT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

export function installSignalHandlers(stderr: NodeJS.WritableStream = process.stderr): void {
  let stopping = false;
  for (const signal of Object.keys(DEFAULT_CODES) as NodeJS.Signals[]) {
    process.on(signal, () => {
      if (stopping) {
        // A second signal while stopping: give up waiting.
        removePendingTemps();
        process.exit(DEFAULT_CODES[signal]);
      }
      stopping = true;
      if (stopHandler) {
        stopHandler(signal).then(
          (code) => process.exit(code),
          () => process.exit(DEFAULT_CODES[signal]),
        );
        return;
      }
      removePendingTemps();
      stderr.write(`\ninterrupted (${signal}); unfinished files were removed (a partial download is kept to resume)\n`);
      process.exit(DEFAULT_CODES[signal]);
    });
  }
}
