/** A time limit on a plugin's loading, register(), start() or stop(). */
import { type ErrorCode, IqpError } from '../../src/errors.js';

/**
 * Runs fn, failing with `code` and `message` after `ms`. The plugin's own work cannot
 * be cancelled: a start() that times out may still finish later, but the host has left it out
 * (and taken its database back: revocable.ts).
 */
export async function within<T>(ms: number, fn: () => Promise<T>, message: string, code: ErrorCode = 'IQP_E_PLUGIN_START'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new IqpError(code, message)), ms);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
