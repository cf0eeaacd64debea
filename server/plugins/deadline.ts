/** A time limit on a plugin's start() or stop(). */
import { IqpError } from '../../src/errors.js';

/**
 * Runs fn, failing with IQP_E_PLUGIN_START and `message` after `ms`. The plugin's own work cannot
 * be cancelled: a start() that times out may still finish later, but the host has left it out
 * (and taken its database back: revocable.ts).
 */
export async function within(ms: number, fn: () => Promise<unknown>, message: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new IqpError('IQP_E_PLUGIN_START', message)), ms);
  });
  try {
    await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
