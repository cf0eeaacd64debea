/**
 * The registry's storage seams. Services depend only on these interfaces, and every method is a
 * complete, atomic operation (no transactions span calls), so a Postgres or S3-compatible adapter
 * can implement them without the services changing. test/server/store-conformance.ts is the contract.
 */
import type { Readable } from 'node:stream';
import type { Manifest } from '../../src/pack/format.js';

export type Role = 'admin' | 'publisher';

export interface PackRecord {
  readonly package_id: string;
  readonly version: string;
  readonly package_type: string;
  readonly language_code: string;
  readonly min_app_version: string;
  readonly manifest: Manifest;
  /** manifest.json bytes exactly as signed (UTF-8 text). */
  readonly manifest_json: string;
  readonly signature: string;
  readonly signer_key_id: string;
  readonly size_bytes: number;
  readonly sha256: string;
  readonly published_at: string;
  readonly deprecated_message: string | null;
  readonly deprecated_at: string | null;
}

export interface AuditEntry {
  readonly id: number;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details: Record<string, unknown> | null;
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>;

export interface AuditFilter {
  /**
   * An exact actor (`cli:token`, `token:0a1b2c3d4e5f(ci)`). `token:<id>` alone also matches that
   * token's entries under any name: the name is part of the actor string, and it is what an
   * operator does not have in hand when a token leaks.
   */
  readonly actor?: string;
  /** An exact target (`key:C753D3401A67BFCB`, `release:7`, `quran.text@1.0.0`). */
  readonly target?: string;
  /** An exact action (`token.revoke`), or a family ending in `.*` (`token.*`). */
  readonly action?: string;
  /** Only entries at or after this RFC 3339 UTC time (as the entries' own `at`, e.g. from toISOString). */
  readonly since?: string;
}

export type KeyPurpose = 'pack' | 'release';

export interface PublisherKey {
  readonly key_id: string;
  readonly public_key: string;
  readonly name: string;
  readonly added_at: string;
  /** 'pack': accepted on pack uploads; 'release': accepted on signed release manifests. */
  readonly purpose: KeyPurpose;
}

export interface TokenRecord {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly created_at: string;
  readonly last_used_at: string | null;
  readonly revoked_at: string | null;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly next_cursor: string | null;
  readonly has_more: boolean;
}

export type InsertPackResult = 'created' | 'identical' | 'conflict';

export interface MetadataStore {
  /** Apply pending migrations; returns the versions applied now. */
  migrate(): Promise<number[]>;
  health(): Promise<void>;
  close(): Promise<void>;

  /**
   * The change counter: moves (never backwards) in the same transaction as every write that changes
   * what a public read answers (packs, keys, releases), whichever process or server made it. Caches
   * keep an answer only while it has not moved. Synchronous and cheap, as it is asked on every
   * cached read: a local read of one row (SQLite), or a value kept current by notifications
   * (a networked database).
   */
  generation(): number;

  /** Inserts the pack and its audit entry atomically; an existing id@version is 'identical' (same sha256) or 'conflict'. */
  insertPack(pack: PackRecord, audit: NewAuditEntry): Promise<InsertPackResult>;
  getPack(packageId: string, version: string): Promise<PackRecord | null>;
  /** All versions of a pack, any status. */
  listVersions(packageId: string): Promise<PackRecord[]>;
  /** Every pack version that is not deprecated, optionally filtered by type and language. */
  listActive(filter: { type?: string; lang?: string }): Promise<PackRecord[]>;
  listPackIds(limit: number, cursor: string | null): Promise<Page<{ package_id: string; versions: number; latest_published_at: string }>>;
  /** Sets or clears (message null) deprecation on the given versions, with one audit entry each, atomically. Returns the updated records. */
  setDeprecation(packageId: string, versions: readonly string[], message: string | null, at: string, actor: string): Promise<PackRecord[]>;
  countPacks(): Promise<number>;
  /** sha256 of every stored pack: the blobs that must exist. */
  listBlobRefs(): Promise<string[]>;

  addKey(key: PublisherKey, audit: NewAuditEntry): Promise<'created' | 'exists'>;
  removeKey(keyId: string, audit: NewAuditEntry): Promise<boolean>;
  listKeys(): Promise<PublisherKey[]>;

  createToken(token: TokenRecord, secretHash: string): Promise<void>;
  /** Looks a token up by the hash of its secret; null when unknown or revoked. Records last use. */
  findToken(secretHash: string, at: string): Promise<TokenRecord | null>;
  listTokens(): Promise<TokenRecord[]>;
  revokeToken(id: string, at: string): Promise<boolean>;

  appendAudit(entry: NewAuditEntry): Promise<void>;
  /** Newest first. See AuditFilter for what each filter matches. */
  listAudit(limit: number, cursor: string | null, filter?: AuditFilter): Promise<Page<AuditEntry>>;
}

export interface BlobRange {
  /** Inclusive byte offsets. */
  readonly start: number;
  readonly end: number;
}

export interface StagedBlob {
  /** A local file the caller writes the upload to (and may read back to verify it). */
  readonly path: string;
  /**
   * Moves the staged file to its content address (durably); the caller vouches for sha256.
   * Committing content that is already stored keeps one blob, and leaves it younger than
   * ORPHAN_GRACE_MS / 2 (see BlobInfo.modifiedAt).
   */
  commit(sha256: string): Promise<void>;
  /** Removes the staged file; safe after commit. */
  abort(): Promise<void>;
}

/**
 * How old a blob no row refers to must be before recovery removes it. A publish commits its blob
 * first and writes the row after, and with a shared bucket that row may be written by another
 * server than the one sweeping: a young unreferenced blob may be one whose row is moments away.
 * An hour is far longer than any commit and row write take (clock skew between servers and the
 * bucket included), and short enough that what a crash leaves is gone by a later start.
 */
export const ORPHAN_GRACE_MS = 60 * 60 * 1000;

export interface BlobInfo {
  readonly sha256: string;
  /**
   * When the blob's bytes were last written, by the store's clock (a file's mtime, an object's
   * Last-Modified): what the orphan sweep compares with ORPHAN_GRACE_MS.
   */
  readonly modifiedAt: Date;
}

export interface BlobStore {
  init(): Promise<void>;
  health(): Promise<void>;
  stage(): Promise<StagedBlob>;
  has(sha256: string): Promise<boolean>;
  size(sha256: string): Promise<number | null>;
  read(sha256: string, range?: BlobRange): Promise<Readable>;
  delete(sha256: string): Promise<void>;
  /** Removes what crashes left (staged files; for a bucket, stale multipart uploads); returns how many. */
  sweep(): Promise<number>;
  /** Every committed blob, sorted by sha256. */
  list(): Promise<BlobInfo[]>;
  /**
   * Optional ability: a URL clients may fetch the blob from directly, with ranges: a presigned one
   * valid for at least `expiresInS` seconds, or a permanent public one (a CDN); offered only by
   * stores that have one (download_mode = redirect needs it).
   */
  downloadUrl?(sha256: string, options: { readonly expiresInS: number; readonly fileName: string; readonly contentType: string }): Promise<{ readonly url: string; readonly permanent: boolean }>;
}
