/**
 * Hints that fit the command. A registry answers with a code and a message only, so the hint the
 * CLI would show is the catalog's generic one, written for every place the code occurs; the command
 * that received the error knows which fix applies to it (publish has no --allow-unsigned flag).
 */
import { CATALOG, type ErrorCode, IqpError, toIqpError } from '../errors.js';

/** A hint per code, or a function choosing one from the error's details. */
export type Hints = Partial<Record<ErrorCode, string | ((err: IqpError) => string)>>;

/**
 * The error with the command's own hint for its code, if it has one. A hint the error already
 * carries from where it was raised (not the catalog's) knows more, and is kept.
 */
export function withHint(err: unknown, hints: Hints): IqpError {
  const coded = toIqpError(err);
  const given = hints[coded.code];
  if (given === undefined || coded.hint !== CATALOG[coded.code].hint) return coded;
  const hint = typeof given === 'function' ? given(coded) : given;
  return new IqpError(coded.code, coded.message, coded.details, { hint, cause: coded });
}

/** The release commands' and `iqp pull --release`: which release, profile, or channel and app version the registry has none of. */
export const RELEASE_HINTS: Hints = {
  IQP_E_NOT_FOUND: (err) => {
    const has = (key: string) => err.details?.[key] !== undefined;
    if (has('release_id')) return 'See the releases and their ids with `iqp release list`.';
    if (has('profile')) return 'See the release profiles with `iqp release profiles`.';
    if (has('channel')) return 'No release published on that channel is for that app version: check --channel and --app-version (`iqp release list --status published` shows what is published).';
    return err.hint;
  },
};

/** Runs `fn`, giving any error it throws the command's hint for its code. */
export async function hinted<T>(hints: Hints, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw withHint(err, hints);
  }
}
