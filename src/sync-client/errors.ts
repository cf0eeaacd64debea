/**
 * What the client throws. `code` is the server's IQP_E_* code when the server gave one, or one of
 * the client's own IQP_CLIENT_* codes below; `kind` tells the sync loop what to do about it, so no
 * caller has to keep its own list of codes.
 */

export type SyncErrorKind =
  /** Sign in again (the queue is kept). */
  | 'signed_out'
  /** Syncing cannot continue until the user acts: update the app, verify the email, new device id. */
  | 'blocked'
  /** pause() or stop() (or the caller's signal) ended the operation. */
  | 'aborted'
  /** Anything else: the loop backs off and tries again. */
  | 'failed';

export const CLIENT_CODES = {
  ABORTED: 'IQP_CLIENT_ABORTED',
  PAUSED: 'IQP_CLIENT_PAUSED',
  SIGNED_OUT: 'IQP_CLIENT_SIGNED_OUT',
  BAD_RESPONSE: 'IQP_CLIENT_BAD_RESPONSE',
  /** A request, or the token source, did not answer within requestTimeoutMs. */
  TIMEOUT: 'IQP_CLIENT_TIMEOUT',
  INVALID_MUTATION: 'IQP_CLIENT_INVALID_MUTATION',
  /** signIn() with another account than the one whose sync state the store holds. */
  OTHER_ACCOUNT: 'IQP_CLIENT_OTHER_ACCOUNT',
} as const;

export class SyncError extends Error {
  override readonly name = 'SyncError';
  constructor(
    readonly code: string,
    message: string,
    readonly kind: SyncErrorKind = 'failed',
    /** The HTTP status, when the error came from a response. */
    readonly status?: number,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export function aborted(): SyncError {
  return new SyncError(CLIENT_CODES.ABORTED, 'sync was paused or stopped', 'aborted');
}

export function isAborted(err: unknown): boolean {
  return err instanceof SyncError && err.kind === 'aborted';
}
