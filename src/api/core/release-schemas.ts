/** The release API's bodies: releases, their signed manifests, validation reports, profiles (routes in releases.ts). */
import Type from 'typebox';
import { DateTime, KeyId, Nullable, PackageId, Paging, RegistryId, Semver, Sha256, Url } from './common.js';

export const Role = Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$', description: 'A role name, e.g. text, translation, recitation.' });

export const ReleaseStatus = Type.Union([Type.Literal('draft'), Type.Literal('published'), Type.Literal('deprecated')]);

export const ReleaseArtifact = Type.Object({ role: Role, package_id: PackageId, version: Semver, attached_at: DateTime }, { additionalProperties: false });

/** A release as the admin API shows it (the signed manifest's text only in the manifest endpoint). */
export const Release = Type.Object(
  {
    id: Type.Integer({ minimum: 1 }),
    name: Type.String({ minLength: 1, maxLength: 100 }),
    channel: Type.String({ minLength: 1 }),
    status: ReleaseStatus,
    notes: Type.String({ maxLength: 10000 }),
    min_app_version: Semver,
    required_roles: Type.Array(Role),
    profile: Nullable(Type.String()),
    artifacts: Type.Array(ReleaseArtifact),
    created_at: DateTime,
    created_by: Type.String(),
    published_at: Nullable(DateTime),
    published_by: Nullable(Type.String()),
    deprecated_at: Nullable(DateTime),
    deprecated_message: Nullable(Type.String()),
    sequence: Nullable(Type.Integer({ minimum: 1 })),
    expires_at: Nullable(DateTime),
    signer_key_id: Nullable(KeyId),
  },
  { additionalProperties: false },
);

export const ReleaseList = Type.Object({ releases: Type.Array(Release), paging: Paging }, { additionalProperties: false });
export const ReleaseRollback = Type.Object({ deprecated: Release, rolled_back_to: Release }, { additionalProperties: false });

const ManifestArtifact = Type.Object(
  { role: Role, package_id: PackageId, version: Semver, size_bytes: Type.Integer({ minimum: 1 }), sha256: Sha256, signer_key_id: KeyId, download_path: Type.String({ pattern: '^/' }) },
  { additionalProperties: false },
);

const BODY_FIELDS = {
  format: Type.Literal(2),
  kind: Type.Literal('iqp-release'),
  registry_id: RegistryId,
  release_id: Type.Integer({ minimum: 1 }),
  name: Type.String(),
  channel: Type.String(),
  min_app_version: Semver,
  notes: Type.String(),
  artifacts: Type.Array(ManifestArtifact),
};

/** What the registry derives from a release for the release manager to sign (they add sequence and times). */
export const ReleaseManifestBody = Type.Object(BODY_FIELDS, { additionalProperties: false });

/** The signed release manifest (manifest_json's content); see docs/client-verification.md. */
export const ReleaseManifest = Type.Object(
  {
    ...BODY_FIELDS,
    sequence: Type.Integer({ minimum: 1 }),
    signed_at: Type.String({ format: 'date-time', pattern: 'Z$' }),
    expires_at: Type.String({ format: 'date-time', pattern: 'Z$' }),
  },
  { additionalProperties: false },
);

/** What an app needs to bootstrap a release: the signed manifest, and absolute URLs outside the signature. */
export const ServedRelease = Type.Object(
  {
    release_id: Type.Integer({ minimum: 1 }),
    name: Type.String(),
    channel: Type.String(),
    status: Type.Union([Type.Literal('published'), Type.Literal('deprecated')]),
    sequence: Type.Integer({ minimum: 1 }),
    min_app_version: Semver,
    notes: Type.String(),
    published_at: DateTime,
    expires_at: DateTime,
    deprecated_message: Nullable(Type.String()),
    signer_key_id: KeyId,
    registry_id: Nullable(RegistryId),
    manifest_json: Type.String({ contentMediaType: 'application/json', description: 'The signed ReleaseManifest, verbatim: verify `signature` over it and take every fact from it.' }),
    signature: Type.String(),
    artifacts: Type.Array(
      Type.Object(
        { role: Role, package_id: PackageId, version: Semver, size_bytes: Type.Integer({ minimum: 1 }), sha256: Sha256, signer_key_id: KeyId, download_url: Url, manifest_url: Url },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const ChannelList = Type.Object({ registry_id: RegistryId, channels: Type.Array(Type.String()) }, { additionalProperties: false });

const Issue = Type.Object({ code: Type.String(), role: Type.Optional(Type.String()), artifact: Type.Optional(Type.String()), message: Type.String() }, { additionalProperties: false });
export const ValidationReport = Type.Object({ ok: Type.Boolean(), failures: Type.Array(Issue), warnings: Type.Array(Issue) }, { additionalProperties: false });
export const ManifestBodyResponse = Type.Object({ body: ReleaseManifestBody, next_sequence: Type.Integer({ minimum: 1 }), status: ReleaseStatus }, { additionalProperties: false });
export const ReleaseProfile = Type.Object({ name: Type.String(), roles: Type.Array(Role, { minItems: 1 }), description: Type.String(), updated_at: DateTime }, { additionalProperties: false });
export const ProfileList = Type.Object({ profiles: Type.Array(ReleaseProfile) }, { additionalProperties: false });

