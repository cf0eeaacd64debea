import type { ErrorCode } from '../../src/errors.js';
import type { Base } from './parts.js';

/** One bad pack: its file name (without .iqp), the one error code a verifier must answer, and why. */
export interface Case {
  readonly name: string;
  readonly expect: ErrorCode;
  readonly why: string;
  make(base: Base): Buffer | Promise<Buffer>;
}

export const badCase = (name: string, expect: ErrorCode, why: string, make: Case['make']): Case => ({ name, expect, why, make });
