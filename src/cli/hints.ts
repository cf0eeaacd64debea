/**
 * Hints that fit the command. A registry answers with a code and a message only, so the hint the
 * CLI would show is the catalog's generic one, written for every place the code occurs; the command
 * that received the error knows which fix applies to it (publish has no --allow-unsigned flag).
 */
import { type ErrorCode, IqpError, toIqpError } from '../errors.js';

/** A hint per code, or a function choosing one from the error's details. */
export type Hints = Partial<Record<ErrorCode, string | ((err: IqpError) => string)>>;

/** The error with the command's own hint for its code, if it has one. */
export function withHint(err: unknown, hints: Hints): IqpError {
  const coded = toIqpError(err);
  const given = hints[coded.code];
  if (given === undefined) return coded;
  const hint = typeof given === 'function' ? given(coded) : given;
  return new IqpError(coded.code, coded.message, coded.details, { hint, cause: coded });
}

/** Runs `fn`, giving any error it throws the command's hint for its code. */
export async function hinted<T>(hints: Hints, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw withHint(err, hints);
  }
}
