/**
 * Storage of releases: drafts that group published packs by role, published with a manifest a
 * release manager signed. Like MetadataStore, every method is one atomic operation.
 */
import type { NewAuditEntry, Page } from './types.js';

export type ReleaseStatus = 'draft' | 'published' | 'deprecated';

export interface ArtifactRecord {
  readonly role: string;
  readonly package_id: string;
  readonly version: string;
  readonly attached_at: string;
}

export interface SignedReleaseManifest {
  readonly sequence: number;
  readonly manifest_json: string;
  readonly signature: string;
  readonly signer_key_id: string;
  readonly expires_at: string;
}

export interface ReleaseRecord {
  readonly id: number;
  readonly name: string;
  readonly channel: string;
  readonly notes: string;
  readonly min_app_version: string;
  readonly required_roles: readonly string[];
  readonly profile: string | null;
  readonly status: ReleaseStatus;
  readonly created_at: string;
  readonly created_by: string;
  readonly published_at: string | null;
  readonly published_by: string | null;
  readonly deprecated_at: string | null;
  readonly deprecated_message: string | null;
  readonly signed: SignedReleaseManifest | null;
  readonly artifacts: readonly ArtifactRecord[];
}

export interface NewRelease {
  readonly name: string;
  readonly channel: string;
  readonly notes: string;
  readonly min_app_version: string;
  readonly required_roles: readonly string[];
  readonly profile: string | null;
  readonly created_at: string;
  readonly created_by: string;
}

export interface ReleaseProfile {
  readonly name: string;
  readonly roles: readonly string[];
  readonly description: string;
  readonly updated_at: string;
}

export type AttachResult = 'attached' | 'exists' | 'not-draft' | 'no-release' | 'no-pack';
/** 'stale' means the release's artifacts changed since the manifest was derived. */
export type PublishResult = 'published' | 'not-draft' | 'sequence' | 'stale' | 'no-release';
export type ResignResult = 'resigned' | 'not-published' | 'sequence' | 'stale' | 'no-release';
export type DeprecateResult = 'deprecated' | 'not-published' | 'no-release';
/** Which half of a rollback failed: nothing was changed either way. */
export type RollbackResult = 'rolled-back' | { readonly deprecate: Exclude<DeprecateResult, 'deprecated'> } | { readonly resign: Exclude<ResignResult, 'resigned'> };

export interface ReleaseStore {
  /** This registry's id (migration 3): random, made once with the data directory, kept by backups. */
  registryId(): Promise<string>;
  createRelease(release: NewRelease): Promise<ReleaseRecord | 'exists'>;
  getRelease(id: number): Promise<ReleaseRecord | null>;
  /** Newest first (by id), keyset-paged. */
  listReleases(limit: number, cursor: string | null, filter?: { channel?: string; status?: ReleaseStatus }): Promise<Page<ReleaseRecord>>;
  /** Published (not deprecated) releases of a channel, highest sequence first. */
  listPublished(channel: string): Promise<ReleaseRecord[]>;
  attachArtifact(releaseId: number, artifact: ArtifactRecord, actor: string): Promise<AttachResult>;
  detachArtifact(releaseId: number, role: string, packageId: string, at: string, actor: string): Promise<'detached' | 'missing' | 'not-draft'>;
  /** The highest sequence signed on a channel so far (0 when none). */
  channelSequence(channel: string): Promise<number>;
  /**
   * draft → published in one transaction: only if still a draft, the sequence is the channel's
   * next, and the artifacts are those `artifactsKey` describes.
   */
  publishRelease(id: number, signed: SignedReleaseManifest, artifactsKey: string, at: string, actor: string): Promise<PublishResult>;
  /** Replaces a published release's signed manifest with a newer one (later expiry, next sequence). */
  resignRelease(id: number, signed: SignedReleaseManifest, artifactsKey: string, at: string, actor: string): Promise<ResignResult>;
  deprecateRelease(id: number, message: string, at: string, actor: string): Promise<DeprecateResult>;
  /**
   * Deprecates release `id` and re-signs `target` (as resignRelease) in one transaction, so that
   * `latest` never serves an older sequence than clients have seen: both happen, or neither.
   */
  rollbackRelease(id: number, message: string, target: number, signed: SignedReleaseManifest, artifactsKey: string, at: string, actor: string): Promise<RollbackResult>;
  upsertProfile(profile: ReleaseProfile, actor: string): Promise<void>;
  getProfile(name: string): Promise<ReleaseProfile | null>;
  listProfiles(): Promise<ReleaseProfile[]>;
  appendAudit(entry: NewAuditEntry): Promise<void>;
}

/** Identifies a release's artifact set, to detect changes between deriving and publishing a manifest. */
export function artifactsKey(artifacts: readonly Pick<ArtifactRecord, 'role' | 'package_id' | 'version'>[]): string {
  return artifacts
    .map((a) => `${a.role}\u0000${a.package_id}\u0000${a.version}`)
    .sort()
    .join('\u0001');
}
