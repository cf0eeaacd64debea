/**
 * Releases: the public reads apps make (/v1/channels, /v1/releases/…) and the release managers'
 * lifecycle under /v1/admin. Request bodies declare their types here; the rules that need the
 * registry's state or the semver library (known channel, semver versions, role names, signatures)
 * stay in server/services/releases.ts, which answers them with their own codes.
 */
import Type from 'typebox';
import { route } from '../route.js';
import { CACHED_NOTE, CACHED_OK, NO_STORE, NOT_MODIFIED, Nullable, PageQuery } from './common.js';
import { ManifestBodyResponse, ProfileList, Release, ReleaseList, ReleaseProfile, ReleaseRollback, ReleaseStatus, ServedRelease, ValidationReport, ChannelList } from './release-schemas.js';

export * from './release-schemas.js';

const MANAGER = 'Requires a bearer token with the **publisher** role (release managers; admin tokens work too).';
/** Path ids are text: anything but a positive integer is a release that does not exist (404), as it always was. */
const ReleaseIdParams = Type.Object({ id: Type.String({ description: 'A release id (a positive integer); anything else is not found (404).' }) });
const Signed = Type.Object({ manifest_json: Type.String({ description: 'The signed release manifest.' }), signature: Type.String({ description: 'Its .minisig text.' }) });
const SIGNED_ERRORS = ['IQP_E_NOT_FOUND', 'IQP_E_USAGE', 'IQP_E_RELEASE_STATE', 'IQP_E_RELEASE_SEQUENCE', 'IQP_E_RELEASE_MANIFEST', 'IQP_E_RELEASE_EXPIRED', 'IQP_E_RELEASE_INVALID', 'IQP_E_SIG_INVALID', 'IQP_E_SIG_MALFORMED', 'IQP_E_SIG_UNTRUSTED_KEY', 'IQP_E_SIG_COMMENT_MISMATCH'] as const;

export const channels = route({
  id: 'releases.channels',
  method: 'GET',
  path: '/channels',
  summary: 'The release channels this registry offers, and its id',
  description:
    'The channels an app may follow (configured by the operator; by default stable, beta, nightly), and the registry id every release manifest it publishes is signed with (apps may pin it).' + CACHED_NOTE,
  tags: ['releases'],
  auth: 'none',
  responses: { 200: { description: 'The channels.', schema: ChannelList, headers: CACHED_OK }, 304: NOT_MODIFIED },
});

export const latest = route({
  id: 'releases.latest',
  method: 'GET',
  path: '/releases/latest',
  summary: 'The release this app should install',
  description:
    'The published, non-deprecated release with the highest sequence on the channel whose `min_app_version` is at most `app_version`, with its signed manifest and absolute download URLs. See ServedRelease for what to verify before trusting it.' +
    CACHED_NOTE,
  tags: ['releases'],
  auth: 'none',
  query: Type.Object({
    channel: Type.Optional(Type.String({ description: 'The channel (default `stable`). Unknown: 400 IQP_E_CHANNEL_UNKNOWN.' })),
    app_version: Type.Optional(Type.String({ description: "The app's version (semver); releases needing a newer app are skipped. Omitted or empty: no filter." })),
  }),
  responses: { 200: { description: 'The release.', schema: ServedRelease, headers: CACHED_OK }, 304: NOT_MODIFIED },
  errors: ['IQP_E_NOT_FOUND', 'IQP_E_CHANNEL_UNKNOWN', 'IQP_E_INVALID_VERSION', 'IQP_E_INVALID_HOST'],
});

export const manifest = route({
  id: 'releases.manifest',
  method: 'GET',
  path: '/releases/{id}/manifest',
  summary: "One release's signed manifest",
  description: 'A published or deprecated release by id (drafts have no signed manifest and are not found).' + CACHED_NOTE,
  tags: ['releases'],
  auth: 'none',
  params: ReleaseIdParams,
  responses: { 200: { description: 'The release.', schema: ServedRelease, headers: CACHED_OK }, 304: NOT_MODIFIED },
  errors: ['IQP_E_NOT_FOUND', 'IQP_E_INVALID_HOST', 'IQP_E_USAGE'],
});

export const create = route({
  id: 'releases.create',
  method: 'POST',
  path: '/releases',
  summary: 'Create a draft release (role: publisher)',
  description: `${MANAGER} A draft names a channel, a minimum app version and the roles it needs (directly or from a profile); attach one pack version per role, validate, then publish it with a signed manifest.`,
  tags: ['releases'],
  auth: 'publisher',
  body: Type.Object({
    name: Type.String({ description: '1-100 printable characters, e.g. 2026.11.' }),
    channel: Type.String(),
    min_app_version: Type.String({ description: 'A semver version.' }),
    notes: Type.Optional(Type.String()),
    roles: Type.Optional(Type.Array(Type.String())),
    profile: Type.Optional(Nullable(Type.String())),
  }),
  responses: { 201: { description: 'The new draft.', schema: Release } },
  errors: ['IQP_E_USAGE', 'IQP_E_CHANNEL_UNKNOWN', 'IQP_E_INVALID_VERSION', 'IQP_E_NOT_FOUND', 'IQP_E_RELEASE_EXISTS'],
});

export const list = route({
  id: 'releases.list',
  method: 'GET',
  path: '/releases',
  summary: 'Releases, newest first (role: publisher)',
  description: MANAGER,
  tags: ['releases'],
  auth: 'publisher',
  query: Type.Object({
    ...PageQuery,
    channel: Type.Optional(Type.String({ description: 'Only this channel; unknown: 400 IQP_E_CHANNEL_UNKNOWN.' })),
    status: Type.Optional(ReleaseStatus),
  }),
  responses: { 200: { description: 'One page of releases.', schema: ReleaseList, headers: NO_STORE } },
  errors: ['IQP_E_USAGE', 'IQP_E_CHANNEL_UNKNOWN'],
});

export const get = route({
  id: 'releases.get',
  method: 'GET',
  path: '/releases/{id}',
  summary: 'One release (role: publisher)',
  description: MANAGER,
  tags: ['releases'],
  auth: 'publisher',
  params: ReleaseIdParams,
  responses: { 200: { description: 'The release.', schema: Release, headers: NO_STORE } },
  errors: ['IQP_E_NOT_FOUND'],
});

export const attach = route({
  id: 'releases.attach',
  method: 'POST',
  path: '/releases/{id}/artifacts',
  summary: 'Attach a pack version to a draft (role: publisher)',
  description: `${MANAGER} The pack version must be published and not deprecated, and the role one the release requires unless \`extra_role\` is true. Attaching the same role, package and version again is a 200 and changes nothing.`,
  tags: ['releases'],
  auth: 'publisher',
  params: ReleaseIdParams,
  body: Type.Object({ role: Type.String(), package_id: Type.String(), version: Type.String({ description: 'A semver version.' }), extra_role: Type.Optional(Type.Boolean()) }),
  responses: { 200: { description: 'Already attached; nothing changed.', schema: Release }, 201: { description: 'The draft with the artifact attached.', schema: Release } },
  errors: ['IQP_E_USAGE', 'IQP_E_INVALID_VERSION', 'IQP_E_NOT_FOUND', 'IQP_E_RELEASE_STATE', 'IQP_E_PACK_NOT_ATTACHABLE', 'IQP_E_ROLE_UNKNOWN'],
});

export const detach = route({
  id: 'releases.detach',
  method: 'DELETE',
  path: '/releases/{id}/artifacts/{role}/{packageId}',
  summary: 'Detach a pack from a draft (role: publisher)',
  description: MANAGER,
  tags: ['releases'],
  auth: 'publisher',
  params: Type.Object({ id: ReleaseIdParams.properties.id, role: Type.String({ description: 'The role the pack is attached in.' }), packageId: Type.String() }),
  responses: { 200: { description: 'The draft without the artifact.', schema: Release } },
  errors: ['IQP_E_NOT_FOUND', 'IQP_E_RELEASE_STATE', 'IQP_E_USAGE'],
});

export const validate = route({
  id: 'releases.validate',
  method: 'POST',
  path: '/releases/{id}/validate',
  summary: 'Check a release before publishing (role: publisher)',
  description: `${MANAGER} Runs every publish check and reports failures and warnings (the result is also written to the audit log, hence POST). A failing release is still a 200 with \`ok: false\`.`,
  tags: ['releases'],
  auth: 'publisher',
  params: ReleaseIdParams,
  responses: { 200: { description: 'The report.', schema: ValidationReport, headers: NO_STORE } },
  errors: ['IQP_E_NOT_FOUND'],
});

export const manifestBody = route({
  id: 'releases.manifest-body',
  method: 'GET',
  path: '/releases/{id}/manifest-body',
  summary: 'What to sign for this release (role: publisher)',
  description: `${MANAGER} The manifest body the registry derives from the release, and the sequence the signed manifest must carry. The release manager adds \`sequence\`, \`signed_at\` and \`expires_at\`, serialises canonically and signs with a release key on their own machine; the registry never holds the key.`,
  tags: ['releases'],
  auth: 'publisher',
  params: ReleaseIdParams,
  responses: { 200: { description: 'The body and next sequence.', schema: ManifestBodyResponse, headers: NO_STORE } },
  errors: ['IQP_E_NOT_FOUND'],
});

export const publish = route({
  id: 'releases.publish',
  method: 'POST',
  path: '/releases/{id}/publish',
  summary: 'Publish a draft with its signed manifest (role: publisher)',
  description: `${MANAGER} The release must validate, and the signed manifest must be exactly what GET …/manifest-body describes with the channel's next sequence, unexpired, signed by a key registered with purpose \`release\`. Publishing is atomic: a concurrent change to the draft or the channel's sequence is a 409.`,
  tags: ['releases'],
  auth: 'publisher',
  params: ReleaseIdParams,
  body: Signed,
  responses: { 200: { description: 'The published release.', schema: Release } },
  errors: SIGNED_ERRORS,
});

export const resign = route({
  id: 'releases.resign',
  method: 'POST',
  path: '/releases/{id}/resign',
  summary: "Renew a published release's signed manifest (role: publisher)",
  description: `${MANAGER} Replaces the signed manifest of a published release with a new one (the channel's next sequence, a later expiry), before the old one expires. Same checks as publish.`,
  tags: ['releases'],
  auth: 'publisher',
  params: ReleaseIdParams,
  body: Signed,
  responses: { 200: { description: 'The re-signed release.', schema: Release } },
  errors: SIGNED_ERRORS,
});

export const deprecate = route({
  id: 'releases.deprecate',
  method: 'POST',
  path: '/releases/{id}/deprecate',
  summary: 'Withdraw a published release (role: publisher)',
  description: `${MANAGER} The release stops being \`latest\` (the previous published one on its channel takes over) but stays readable by id with \`status: deprecated\`. Unlike a pack's deprecation, it needs a message and cannot be undone. With \`rollback_to\`, the same transaction re-signs the named previous release of the channel with the manifest given (signed like a resign: GET …/manifest-body of that release, the channel's next sequence), so \`latest\` never goes to a lower sequence than clients have seen: both happen, or neither (one audit entry each).`,
  tags: ['releases'],
  auth: 'publisher',
  params: ReleaseIdParams,
  body: Type.Object({
    message: Type.String({ description: 'Why, for release managers and apps: not blank, at most 2000 characters.' }),
    rollback_to: Type.Optional(Type.Object({ release_id: Type.Integer({ minimum: 1 }), manifest_json: Type.String(), signature: Type.String() })),
  }),
  responses: { 200: { description: 'The deprecated release; with `rollback_to`, it and the re-signed release.', schema: Type.Union([Release, ReleaseRollback]) } },
  errors: SIGNED_ERRORS,
});

export const listProfiles = route({
  id: 'releases.profiles',
  method: 'GET',
  path: '/release-profiles',
  summary: 'Release profiles (role: publisher)',
  description: `${MANAGER} A profile is a named set of required roles that new releases can start from.`,
  tags: ['releases'],
  auth: 'publisher',
  responses: { 200: { description: 'The profiles.', schema: ProfileList, headers: NO_STORE } },
});

export const putProfile = route({
  id: 'releases.put-profile',
  method: 'PUT',
  path: '/release-profiles/{name}',
  summary: 'Create or replace a release profile (role: publisher)',
  description: `${MANAGER} Releases already created keep the roles they had.`,
  tags: ['releases'],
  auth: 'publisher',
  params: Type.Object({ name: Type.String({ description: 'A profile name: a lower-case letter, then up to 63 of a-z 0-9 _ . -' }) }),
  body: Type.Object({ roles: Type.Array(Type.String()), description: Type.Optional(Type.String()) }),
  responses: { 200: { description: 'The profile as stored.', schema: ReleaseProfile } },
  errors: ['IQP_E_USAGE'],
});

/** Public release reads, mounted under /v1. */
export const PUBLIC_RELEASE_ROUTES = [channels, latest, manifest] as const;
/** Release management, mounted under /v1/admin. */
export const ADMIN_RELEASE_ROUTES = [create, list, get, attach, detach, validate, manifestBody, publish, resign, deprecate, listProfiles, putProfile] as const;
