/** What the registry's upload verification thread (verify-worker.ts) and the request's thread (verify-thread.ts) say to each other. */
import type { Limits } from '../../src/pack/format.js';
import type { VerifyReport } from '../../src/pack/verify.js';

export interface VerifyJob {
  /** The registered pack keys, as minisign .pub text. */
  readonly publicKeys: readonly string[];
  readonly limits: Limits;
  readonly maxCompressionRatio: number;
  /** The staged copy of the upload, complete once `end` has been sent. */
  readonly stagedPath: string;
  /** Where content.sqlite is written for integrity_check; the request's thread removes its directory. */
  readonly contentPath: string;
  /** The pack's manifest.json.minisig as sent beside the upload (X-Iqp-Signature): verified in one pass, signature first. */
  readonly signature: Uint8Array | null;
}

export type ToWorker = { readonly type: 'chunk'; readonly chunk: Uint8Array } | { readonly type: 'end' } | { readonly type: 'abort' };

export interface WorkerFailure {
  readonly code: string;
  readonly message: string;
  readonly hint: string;
  readonly details?: Record<string, unknown>;
}

export type FromWorker =
  | { readonly type: 'consumed'; readonly bytes: number }
  | { readonly type: 'done'; readonly report: VerifyReport }
  | { readonly type: 'failed'; readonly error: WorkerFailure };
