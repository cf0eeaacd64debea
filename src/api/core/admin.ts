/** Admin routes under /v1/admin: publishing and deprecating packs, publisher keys, the audit log. */
import Type from 'typebox';
import { route } from '../route.js';
import { DateTime, NO_STORE, PageQuery, Paging } from './common.js';
import { KeyList, KeyPurpose, PACK_MEDIA_TYPE, PublishResult, PublisherKey, ServedManifest } from './packs.js';

const PACK_ID_PARAM = Type.String({ description: 'The package id.' });

export const AuditEntry = Type.Object(
  {
    id: Type.Integer({ minimum: 1 }),
    at: DateTime,
    actor: Type.String(),
    action: Type.String(),
    target: Type.String(),
    details: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
  },
  { additionalProperties: false },
);

export const AuditPage = Type.Object({ entries: Type.Array(AuditEntry), paging: Paging }, { additionalProperties: false });
export const AddKeyResult = Type.Object({ status: Type.Union([Type.Literal('created'), Type.Literal('exists')]), key: PublisherKey }, { additionalProperties: false });

const AUDIT_TEXT = (description: string) => Type.Optional(Type.String({ maxLength: 500, description: `${description} Empty: no filter.` }));

export const publish = route({
  id: 'packs.publish',
  method: 'PUT',
  path: '/packs',
  summary: 'Publish a pack (role: publisher or admin)',
  description:
    "Requires a bearer token with the **publisher** or **admin** role.\n\nSend the .iqp file as the raw request body (`Content-Type: application/octet-stream`, `application/vnd.iqp.pack+zstd` or `application/zstd`; no Content-Type counts as octet-stream), streamed, never base64 or multipart. The id and version come from the pack's manifest. The registry verifies the pack as it streams in, exactly as `iqp verify` does, with its publisher keys as the trusted keys; nothing is stored unless every check passes.\n\nOptionally send the pack's `manifest.json.minisig` (its exact bytes, standard base64, at most 4096 bytes before encoding) in `X-Iqp-Signature`, as `iqp publish` does: the registry then checks that signature against its publisher keys as soon as `manifest.json` (the first entry) has arrived, and refuses a pack it does not trust before decompressing any of its content, answering while the client is still sending; a trusted pack is verified in one pass, and its own `manifest.json.minisig` must be the same bytes (else 422 `IQP_E_SIG_INVALID`). Without the header the signature, the archive's last entry, is checked after a first pass that writes nothing, and a trusted pack is read a second time from the staged copy.\n\nVersions are immutable: the same bytes again is a harmless 200 (`result: identical`), different bytes for a published version is 409. A declared Content-Length over the registry's limit is refused before the body is read.",
  tags: ['admin'],
  auth: 'publisher',
  requestHeaders: { 'X-Iqp-Signature': "The pack's manifest.json.minisig, byte for byte, in standard base64 (padded). Over 4096 bytes decoded, or not base64: 400 `IQP_E_USAGE` before the body is read." },
  rawBody: { contentTypes: ['application/octet-stream', PACK_MEDIA_TYPE, 'application/zstd'], description: 'The .iqp file, streamed.' },
  responses: {
    200: { description: 'This exact file was already published; nothing changed.', schema: PublishResult },
    201: { description: 'Published: a new version.', schema: PublishResult },
    503: { description: 'The registry is receiving as many uploads as it takes at once (max_concurrent_uploads); try again after Retry-After seconds.', headers: { 'Retry-After': 'Seconds to wait before trying again.' } },
  },
  errors: [
    'IQP_E_USAGE',
    'IQP_E_INVALID_HOST',
    'IQP_E_REQUEST_TIMEOUT',
    'IQP_E_VERSION_EXISTS',
    'IQP_E_UPLOAD_TOO_LARGE',
    'IQP_E_UNSUPPORTED_MEDIA_TYPE',
    'IQP_E_BUSY',
    'IQP_E_NO_PUBLISHER_KEYS',
    'IQP_E_SIG_INVALID',
    'IQP_E_SIG_MALFORMED',
    'IQP_E_SIG_UNTRUSTED_KEY',
    'IQP_E_PACK_UNSIGNED',
    'IQP_E_PACK_COMPRESSION',
    'IQP_E_PACK_NOT_TAR',
    'IQP_E_PACK_TRUNCATED',
    'IQP_E_MANIFEST_SCHEMA',
    'IQP_E_CONTENT_TOO_LARGE',
  ],
});

export const deprecate = route({
  id: 'packs.deprecate',
  method: 'POST',
  path: '/packs/{id}/{version}/deprecate',
  summary: 'Deprecate or un-deprecate a version (role: publisher or admin)',
  description:
    'Requires a bearer token with the **publisher** or **admin** role.\n\nA deprecated version stays downloadable by version, but /v1/packs/available and the unversioned download skip it, and its manifest says `status: deprecated` with the message. A non-empty `message` deprecates (or replaces the message); an empty one un-deprecates. The body is required: a request without a JSON `message` is refused rather than taken to un-deprecate.',
  tags: ['admin'],
  auth: 'publisher',
  params: Type.Object({ id: PACK_ID_PARAM, version: Type.String({ description: 'The version (semver; a version stored before versions were checked may be named by its exact text).' }) }),
  body: Type.Object({ message: Type.String({ maxLength: 2000, description: 'The reason, at most 2000 characters ("" un-deprecates).' }) }),
  responses: { 200: { description: 'The version as now served.', schema: ServedManifest } },
  errors: ['IQP_E_NOT_FOUND', 'IQP_E_INVALID_VERSION', 'IQP_E_INVALID_HOST'],
});

export const listKeys = route({
  id: 'keys.list',
  method: 'GET',
  path: '/keys',
  summary: 'The publisher keys (role: admin)',
  description: 'Requires a bearer token with the **admin** role. The same keys as GET /v1/keys, uncached.',
  tags: ['admin'],
  auth: 'admin',
  responses: { 200: { description: 'The keys, oldest first.', schema: KeyList, headers: NO_STORE } },
});

export const addKey = route({
  id: 'keys.add',
  method: 'POST',
  path: '/keys',
  summary: 'Trust a publisher key (role: admin)',
  description:
    'Requires a bearer token with the **admin** role. Registers a minisign public key; from then on the registry accepts packs (purpose `pack`) or release manifests (purpose `release`) signed by it. Adding a key that is already registered is a harmless 200 (`status: exists`).',
  tags: ['admin'],
  auth: 'admin',
  body: Type.Object({
    public_key: Type.String({ description: 'The contents of a minisign .pub file.' }),
    name: Type.Optional(Type.String()),
    purpose: Type.Optional(KeyPurpose),
  }),
  responses: { 200: { description: 'Already registered.', schema: AddKeyResult }, 201: { description: 'Registered.', schema: AddKeyResult } },
  errors: ['IQP_E_KEY_INVALID'],
});

export const removeKey = route({
  id: 'keys.remove',
  method: 'DELETE',
  path: '/keys/{keyId}',
  summary: 'Stop trusting a publisher key (role: admin)',
  description:
    'Requires a bearer token with the **admin** role. New uploads signed by the key are refused from then on; packs already published stay, and still name it as `signer_key_id`. Apps verify packs against the listed keys, so a key that still signs pack versions apps are offered (published, not deprecated) is not removed unless `force=true` (for a compromised key).',
  tags: ['admin'],
  auth: 'admin',
  params: Type.Object({ keyId: Type.String({ description: 'The key ID of a publisher key (case-insensitive).' }) }),
  query: Type.Object({ force: Type.Optional(Type.String({ description: '`true` removes the key even though it signs packs apps are offered.' })) }),
  responses: { 204: { description: 'Removed. No body.' } },
  errors: ['IQP_E_NOT_FOUND', 'IQP_E_KEY_IN_USE'],
});

export const audit = route({
  id: 'audit.list',
  method: 'GET',
  path: '/audit',
  summary: 'The audit log, newest first (role: admin)',
  description: 'Requires a bearer token with the **admin** role. Every publish, deprecation, key and token change, newest first, paged.',
  tags: ['admin'],
  auth: 'admin',
  query: Type.Object({
    ...PageQuery,
    actor: AUDIT_TEXT('Only entries by this actor: an exact match (e.g. `token:0a1b2c3d4e5f(ci)`), or `token:<id>` alone for every entry of that token whatever its name.'),
    target: AUDIT_TEXT('Only entries about this target (exact match, e.g. `quran.translation.en-sahih@1.0.0` or `key:C753D3401A67BFCB`).'),
    action: AUDIT_TEXT('Only entries of this action (exact match, e.g. `token.revoke`), or of a family ending in `.*` (e.g. `token.*`).'),
    since: AUDIT_TEXT('Only entries at or after this time (e.g. `2026-11-22` or `2026-11-22T08:00:00Z`; UTC unless an offset is given). Not a time: 400.'),
  }),
  responses: { 200: { description: 'One page of entries.', schema: AuditPage, headers: NO_STORE } },
  errors: ['IQP_E_USAGE'],
});

/** Mounted under /v1/admin. */
export const ADMIN_ROUTES = [publish, deprecate, listKeys, addKey, removeKey, audit] as const;
