/**
 * The sync wire protocol v1 as the client sees it (docs: /v1/sync/push, /v1/sync/pull, conflicts,
 * and the two auth routes the client needs). Types only, plus the few patterns and codes the client
 * checks itself: this file is the contract, so it mirrors the wire document field for field.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type Op = 'upsert' | 'patch' | 'delete';

/** One mutation as pushed. */
export interface Mutation {
  mutation_id: string;
  entity: string;
  entity_id: string;
  op: Op;
  /** upsert: the whole object; patch: the top-level fields to set; delete: omitted or null. */
  payload?: JsonObject | null;
  /** The version of the entity this device last saw; omitted (or 0) when it has never seen it. */
  base_version?: number;
  /** Informational only, never decides order. */
  client_ts?: string;
}

export interface PushRequest {
  device_id: string;
  device_name?: string;
  schema_version: number;
  mutations: Mutation[];
}

export type ResultStatus = 'applied' | 'merged' | 'conflict' | 'duplicate' | 'rejected';

export interface MutationError {
  code: string;
  message: string;
  field?: string;
}

export interface MutationResult {
  mutation_id: string;
  status: ResultStatus;
  entity: string;
  entity_id: string;
  /** The entity's version after this mutation (rejected: the current version if the entity exists). */
  version?: number;
  /** The per-user sequence number after this mutation (absent when rejected). */
  seq?: number;
  /** status conflict: the record that keeps both sides. */
  conflict_id?: string;
  /** status rejected. */
  error?: MutationError;
}

export interface PushResult {
  /** One per mutation, in the order sent. */
  results: MutationResult[];
  head: number;
}

export interface PullRequest {
  device_id: string;
  /** null: from the beginning (a snapshot of the latest state). Opaque: never parse it. */
  cursor: string | null;
  /** 1..1000, default 500. */
  limit?: number;
  /** 1024..8388608, default 1048576. */
  max_bytes?: number;
  /** 0..30 seconds: hold the request until something changes (long poll). */
  wait?: number;
}

/** The latest state of one entity; deletes are tombstones (op delete, payload null). */
export interface Change {
  entity: string;
  entity_id: string;
  op: 'upsert' | 'delete';
  payload: JsonObject | null;
  version: number;
  seq: number;
}

export type ResetReason = 'cursor_expired' | 'cursor_unknown' | 'data_replaced';

export interface Conflict {
  id: string;
  entity: string;
  entity_id: string;
  seq: number;
  fields: string[];
  base: JsonObject | null;
  /** null: that side deleted the entity. */
  winner: JsonObject | null;
  loser: JsonObject | null;
  winner_device: string;
  loser_device: string | null;
  summary: string;
  status: 'open' | 'resolved';
  resolution: null | 'winner' | 'loser' | 'payload';
  created_at: string;
  resolved_at: string | null;
}

export interface PullResponse {
  changes: Change[];
  conflicts: Conflict[];
  cursor: string;
  has_more: boolean;
  head: number;
  /** Present when the cursor could not be continued: push the queue, then page a full snapshot from `cursor`. */
  reset?: { reason: ResetReason };
}

export interface ConflictList {
  conflicts: Conflict[];
  next: string | null;
}

export interface ResolveRequest {
  device_id: string;
  keep: 'winner' | 'loser' | JsonObject;
}

export interface ResolveResponse {
  conflict: Conflict;
  version: number;
  seq: number;
}

/** Every error the server sends: JSON, always this shape. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export interface LoginRequest {
  email: string;
  password: string;
  device_id?: string;
  device_name?: string;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
}

export interface SignInResponse extends TokenResponse {
  user: { id: string; email: string; email_verified: boolean; role: string; created_at: string };
}

/** The codes the client acts on. Others are passed through as they come. */
export const CODES = {
  TOKEN_EXPIRED: 'IQP_E_TOKEN_EXPIRED',
  TOKEN_INVALID: 'IQP_E_TOKEN_INVALID',
  UNAUTHENTICATED: 'IQP_E_UNAUTHENTICATED',
  REFRESH_REUSED: 'IQP_E_REFRESH_REUSED',
  REFRESH_INVALID: 'IQP_E_REFRESH_INVALID',
  RATE_LIMITED: 'IQP_E_RATE_LIMITED',
  BUSY: 'IQP_E_BUSY',
  UPLOAD_TOO_LARGE: 'IQP_E_UPLOAD_TOO_LARGE',
  PUSH_TOO_LARGE: 'IQP_E_SYNC_PUSH_TOO_LARGE',
  SCHEMA_VERSION: 'IQP_E_SYNC_SCHEMA_VERSION',
  EMAIL_UNVERIFIED: 'IQP_E_EMAIL_UNVERIFIED',
  DEVICE_FOREIGN: 'IQP_E_DEVICE_FOREIGN',
  ENTITY_UNKNOWN: 'IQP_E_SYNC_ENTITY_UNKNOWN',
  PAYLOAD_INVALID: 'IQP_E_SYNC_PAYLOAD_INVALID',
  PAYLOAD_TOO_LARGE: 'IQP_E_SYNC_PAYLOAD_TOO_LARGE',
  BASE_VERSION: 'IQP_E_SYNC_BASE_VERSION',
  MUTATION_REUSED: 'IQP_E_SYNC_MUTATION_REUSED',
  NOT_FOUND: 'IQP_E_NOT_FOUND',
  INVALID_CREDENTIALS: 'IQP_E_INVALID_CREDENTIALS',
  INVALID_REQUEST: 'IQP_E_INVALID_REQUEST',
  USAGE: 'IQP_E_USAGE',
} as const;

export const DEVICE_ID = /^[A-Za-z0-9._:-]{8,128}$/;
export const MUTATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const ENTITY = /^[a-z][a-z0-9_]{0,63}$/;
/** 1..256 characters (code points, as JSON Schema's maxLength counts them), none of U+0000–U+001F or U+007F: exactly what the registry takes, so an id another app made can always be edited here. */
export const ENTITY_ID = /^[^\u0000-\u001f\u007f]{1,256}$/u;
