/**
 * The /v1 response shapes the client reads, derived from the route declarations' schemas
 * (src/api/core), so they cannot drift from what the registry sends. Type-only imports: the CLI
 * never loads typebox at run time.
 */
import type { Static } from 'typebox';
import type { AddKeyResult } from '../api/core/admin.js';
import type * as packs from '../api/core/packs.js';

export type PackStatus = Static<typeof packs.PackStatus>;

/** One version in GET /v1/packs/{id}. */
export type VersionSummary = Static<typeof packs.PackVersion>;

/** GET /v1/packs/{id} */
export type PackVersions = Static<typeof packs.PackVersions>;

/** GET /v1/packs/{id}/{version}/manifest, and POST …/deprecate. */
export type ManifestResponse = Static<typeof packs.ServedManifest>;

/** PUT /v1/admin/packs */
export type PublishResponse = Static<typeof packs.PublishResult>;

export type AvailablePack = Static<typeof packs.PackSummary>;

/** GET /v1/packs/available */
export type AvailablePacks = Static<typeof packs.AvailablePacks>;

export type KeyPurpose = Static<typeof packs.KeyPurpose>;

export type PublisherKeyInfo = Static<typeof packs.PublisherKey>;

/** GET /v1/keys and GET /v1/admin/keys */
export type KeyList = Static<typeof packs.KeyList>;

/** POST /v1/admin/keys */
export type KeyAdded = Static<typeof AddKeyResult>;
