/** Release endpoints: public latest/manifest for apps, admin lifecycle for release managers. */
import type { Router } from 'express';
import { DEFAULT_PAGE } from '../../src/api/core/common.js';
import * as api from '../../src/api/core/releases.js';
import { IqpError } from '../../src/errors.js';
import type { ReleaseManifest } from '../../src/pack/release-manifest.js';
import type { ServerConfig } from '../config.js';
import { ANSWERED, reply } from '../http/contract.js';
import { actorOf } from '../http/guard.js';
import type { CachedRoute, JsonCache } from '../http/json-cache.js';
import type { ReleaseService } from '../services/releases.js';
import type { ReleaseRecord } from '../stores/release-types.js';
import { declaredRouter, NO_STORE, type RouteContract } from './mount.js';
import { manifestUrl } from './public.js';

/** A release id from the path: anything but a positive integer is a release that does not exist. */
function releaseId(raw: string): number {
  const id = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(id) || id < 1) throw new IqpError('IQP_E_NOT_FOUND', `No release ${JSON.stringify(raw)}.`);
  return id;
}

/** A release as the admin API shows it (the signed manifest's text only in the manifest endpoint). */
export function releaseView(r: ReleaseRecord) {
  return {
    id: r.id,
    name: r.name,
    channel: r.channel,
    status: r.status,
    notes: r.notes,
    min_app_version: r.min_app_version,
    required_roles: r.required_roles,
    profile: r.profile,
    artifacts: r.artifacts,
    created_at: r.created_at,
    created_by: r.created_by,
    published_at: r.published_at,
    published_by: r.published_by,
    deprecated_at: r.deprecated_at,
    deprecated_message: r.deprecated_message,
    sequence: r.signed?.sequence ?? null,
    expires_at: r.signed?.expires_at ?? null,
    signer_key_id: r.signed?.signer_key_id ?? null,
  };
}

/** What an app needs to bootstrap a release: the signed manifest, and absolute URLs outside the signature. */
export function releaseManifestView(base: string, r: ReleaseRecord) {
  if (!r.signed) throw new IqpError('IQP_E_NOT_FOUND', `Release ${r.id} is a draft; it has no signed manifest yet.`);
  const signed = JSON.parse(r.signed.manifest_json) as ReleaseManifest;
  return {
    release_id: r.id,
    name: r.name,
    channel: r.channel,
    status: r.status,
    sequence: r.signed.sequence,
    min_app_version: r.min_app_version,
    notes: r.notes,
    published_at: r.published_at,
    expires_at: r.signed.expires_at,
    deprecated_message: r.deprecated_message,
    signer_key_id: r.signed.signer_key_id,
    // Outside the signature, for people reading the response; clients take it from manifest_json.
    // Null for a manifest signed before registries had ids (format 1).
    registry_id: signed.registry_id ?? null,
    manifest_json: r.signed.manifest_json,
    signature: r.signed.signature,
    artifacts: signed.artifacts.map((a) => ({
      role: a.role,
      package_id: a.package_id,
      version: a.version,
      size_bytes: a.size_bytes,
      sha256: a.sha256,
      signer_key_id: a.signer_key_id,
      download_url: `${base}${a.download_path}`,
      manifest_url: manifestUrl(base, a),
    })),
  };
}

export interface ReleaseDeps {
  readonly config: ServerConfig;
  readonly releases: ReleaseService;
  readonly cache: JsonCache;
}

/** The cached answers below, and what each depends on (http/json-cache.ts). */
export const RELEASE_CACHED = {
  channels: { route: '/v1/channels', query: [], links: false },
  latest: { route: '/v1/releases/latest', query: ['channel', 'app_version'], links: true },
  manifest: { route: '/v1/releases/:id/manifest', query: [], links: true },
} as const satisfies Record<string, CachedRoute>;

export function publicReleaseRoutes(d: ReleaseDeps, contract: RouteContract): Router {
  const { router, mount } = declaredRouter(contract);
  mount(api.channels, async (_input, req, res, checked) => {
    await d.cache.send(req, res, RELEASE_CACHED.channels, async () => checked({ registry_id: await d.releases.registryId(), channels: d.releases.channels }));
    return ANSWERED;
  });
  mount(api.latest, async ({ query }, req, res, checked) => {
    await d.cache.send(req, res, RELEASE_CACHED.latest, async (base) => checked(releaseManifestView(base, await d.releases.latest(query.channel, query.app_version))));
    return ANSWERED;
  });
  mount(api.manifest, async ({ params }, req, res, checked) => {
    const id = releaseId(params.id);
    await d.cache.send(req, res, RELEASE_CACHED.manifest, async (base) => checked(releaseManifestView(base, await d.releases.get(id))));
    return ANSWERED;
  });
  return router;
}

/** Signed manifests of releases with many artifacts outgrow the 64 KiB other JSON bodies get. */
const RELEASE_JSON_LIMIT = 1024 * 1024;

export function adminReleaseRoutes(d: ReleaseDeps, contract: RouteContract): Router {
  const { router, mount } = declaredRouter({ ...contract, options: { ...contract.options, jsonLimit: RELEASE_JSON_LIMIT } });

  mount(api.create, async ({ body }, _req, res) => releaseView(
      await d.releases.create({ name: body.name, channel: body.channel, notes: body.notes, min_app_version: body.min_app_version, roles: body.roles, profile: body.profile }, actorOf(res)),
    ),
  );

  mount(api.list, async ({ query }) => {
    const limit = query.limit ?? DEFAULT_PAGE;
    const { channel, status } = query;
    const page = await d.releases.list(limit, query.cursor ?? null, { ...(channel ? { channel } : {}), ...(status ? { status } : {}) });
    return reply(200, { releases: page.items.map(releaseView), paging: { limit, next_cursor: page.next_cursor, has_more: page.has_more } }, NO_STORE);
  });

  mount(api.get, async ({ params }) => reply(200, releaseView(await d.releases.get(releaseId(params.id))), NO_STORE));

  mount(api.attach, async ({ params, body }, _req, res) => {
    const id = releaseId(params.id);
    const before = await d.releases.get(id);
    const already = before.artifacts.some((a) => a.role === body.role && a.package_id === body.package_id && a.version === body.version);
    return reply(already ? 200 : 201, releaseView(await d.releases.attach(id, { role: body.role, package_id: body.package_id, version: body.version, extra_role: body.extra_role }, actorOf(res))));
  });

  mount(api.detach, async ({ params }, _req, res) => releaseView(await d.releases.detach(releaseId(params.id), params.role, params.packageId, actorOf(res))));

  mount(api.validate, async ({ params }, _req, res) => reply(200, await d.releases.validate(releaseId(params.id), actorOf(res)), NO_STORE));

  mount(api.manifestBody, async ({ params }) => reply(200, await d.releases.manifestBody(releaseId(params.id)), NO_STORE));

  mount(api.publish, async ({ params, body }, _req, res) => releaseView(await d.releases.publish(releaseId(params.id), { manifest_json: body.manifest_json, signature: body.signature }, actorOf(res))));

  mount(api.resign, async ({ params, body }, _req, res) => releaseView(await d.releases.resign(releaseId(params.id), { manifest_json: body.manifest_json, signature: body.signature }, actorOf(res))));

  mount(api.deprecate, async ({ params, body }, _req, res) => {
    const id = releaseId(params.id);
    if (body.rollback_to === undefined) return releaseView(await d.releases.deprecate(id, body.message, actorOf(res)));
    const { deprecated, rolled_back_to } = await d.releases.rollback(id, body.message, body.rollback_to, actorOf(res));
    return { deprecated: releaseView(deprecated), rolled_back_to: releaseView(rolled_back_to) };
  });

  mount(api.listProfiles, async () => reply(200, { profiles: await d.releases.listProfiles() }, NO_STORE));

  mount(api.putProfile, async ({ params, body }, _req, res) => d.releases.putProfile(params.name, { roles: body.roles, description: body.description }, actorOf(res)));

  return router;
}
