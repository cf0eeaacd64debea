/** The /v1 response shapes the client reads (docs/openapi.json is the full description). */
import type { Manifest } from '../pack/format.js';

export type PackStatus = 'published' | 'deprecated';

/** What every listing says of one pack version: what it needs, its bytes, and where to get them. */
interface VersionFacts {
  readonly version: string;
  readonly min_app_version: string;
  readonly size_bytes: number;
  readonly sha256: string;
  readonly signer_key_id: string;
  readonly manifest_url: string;
  readonly download_url: string;
}

export interface VersionSummary extends VersionFacts {
  readonly status: PackStatus;
  readonly deprecated_message: string | null;
  readonly published_at: string;
}

/** GET /v1/packs/{id} */
export interface PackVersions {
  readonly package_id: string;
  readonly versions: readonly VersionSummary[];
}

/** GET /v1/packs/{id}/{version}/manifest, and the body of PUT /v1/admin/packs (with `result`). */
export interface ManifestResponse extends Manifest {
  readonly size_bytes: number;
  readonly sha256: string;
  readonly status: PackStatus;
  readonly deprecated_message: string | null;
  readonly published_at: string;
  readonly signer_key_id: string;
  readonly signature: string;
  readonly manifest_json: string;
  readonly download_url: string;
}

export interface PublishResponse extends ManifestResponse {
  readonly result: 'created' | 'identical';
}

export interface AvailablePack extends VersionFacts {
  readonly package_id: string;
  readonly package_type: string;
  readonly language_code: string;
  readonly name: string;
}

/** GET /v1/packs/available */
export interface AvailablePacks {
  readonly app_version: string | null;
  readonly packs: readonly AvailablePack[];
}

export type KeyPurpose = 'pack' | 'release';

export interface PublisherKeyInfo {
  readonly key_id: string;
  readonly name: string;
  /** What the key signs; registries from before release keys omit it (all keys sign packs). */
  readonly purpose?: KeyPurpose;
  readonly public_key: string;
  readonly added_at: string;
}

/** GET /v1/keys and GET /v1/admin/keys */
export interface KeyList {
  readonly keys: readonly PublisherKeyInfo[];
}

/** POST /v1/admin/keys */
export interface KeyAdded {
  readonly status: 'created' | 'exists';
  readonly key: PublisherKeyInfo;
}
