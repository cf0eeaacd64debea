/** Release endpoints: public latest/manifest for apps, admin lifecycle for release managers. */
import express, { Router, type Request } from 'express';
import { IqpError } from '../../src/errors.js';
import type { ReleaseManifest } from '../../src/pack/release-manifest.js';
import type { ServerConfig } from '../config.js';
import { actorOf, requireRole } from '../http/auth.js';
import type { CachedRoute, JsonCache } from '../http/json-cache.js';
import type { ReleaseService } from '../services/releases.js';
import type { TokenService } from '../services/tokens.js';
import type { ReleaseRecord, ReleaseStatus } from '../stores/release-types.js';
import { pageParams } from './paging.js';
import { manifestUrl } from './public.js';

function releaseId(req: Request): number {
  const raw = String(req.params['id']);
  const id = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(id) || id < 1) throw new IqpError('IQP_E_NOT_FOUND', `No release ${JSON.stringify(raw)}.`);
  return id;
}

function body(req: Request): Record<string, unknown> {
  const b: unknown = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw new IqpError('IQP_E_USAGE', 'The request body must be a JSON object.');
  return b as Record<string, unknown>;
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
  readonly tokens: TokenService;
  readonly cache: JsonCache;
}

/** The cached answers below, and what each depends on (http/json-cache.ts). */
export const RELEASE_CACHED = {
  channels: { route: '/v1/channels', query: [], links: false },
  latest: { route: '/v1/releases/latest', query: ['channel', 'app_version'], links: true },
  manifest: { route: '/v1/releases/:id/manifest', query: [], links: true },
} as const satisfies Record<string, CachedRoute>;

export function publicReleaseRoutes(d: ReleaseDeps): Router {
  const r = Router();
  r.get('/channels', async (req, res) => {
    await d.cache.send(req, res, RELEASE_CACHED.channels, async () => ({ registry_id: await d.releases.registryId(), channels: d.releases.channels }));
  });
  r.get('/releases/latest', async (req, res) => {
    await d.cache.send(req, res, RELEASE_CACHED.latest, async (base) => releaseManifestView(base, await d.releases.latest(req.query['channel'], req.query['app_version'])));
  });
  r.get('/releases/:id/manifest', async (req, res) => {
    const id = releaseId(req);
    await d.cache.send(req, res, RELEASE_CACHED.manifest, async (base) => releaseManifestView(base, await d.releases.get(id)));
  });
  return r;
}

export function adminReleaseRoutes(d: ReleaseDeps): Router {
  const r = Router();
  const manager = requireRole(d.tokens, 'publisher');
  const json = express.json({ limit: '1mb' });

  r.post('/releases', manager, json, async (req, res) => {
    const b = body(req);
    const release = await d.releases.create(
      { name: b['name'], channel: b['channel'], notes: b['notes'], min_app_version: b['min_app_version'], roles: b['roles'], profile: b['profile'] },
      actorOf(res),
    );
    res.status(201).json(releaseView(release));
  });

  r.get('/releases', manager, async (req, res) => {
    const { limit, cursor } = pageParams(req);
    const channel = typeof req.query['channel'] === 'string' ? req.query['channel'] : undefined;
    const status = typeof req.query['status'] === 'string' ? (req.query['status'] as ReleaseStatus) : undefined;
    const page = await d.releases.list(limit, cursor, { ...(channel ? { channel } : {}), ...(status ? { status } : {}) });
    res.set('Cache-Control', 'no-store').json({ releases: page.items.map(releaseView), paging: { limit, next_cursor: page.next_cursor, has_more: page.has_more } });
  });

  r.get('/releases/:id', manager, async (req, res) => {
    res.set('Cache-Control', 'no-store').json(releaseView(await d.releases.get(releaseId(req))));
  });

  r.post('/releases/:id/artifacts', manager, json, async (req, res) => {
    const b = body(req);
    const before = await d.releases.get(releaseId(req));
    const already = before.artifacts.some((a) => a.role === b['role'] && a.package_id === b['package_id'] && a.version === b['version']);
    res
      .status(already ? 200 : 201)
      .json(releaseView(await d.releases.attach(releaseId(req), { role: b['role'], package_id: b['package_id'], version: b['version'], extra_role: b['extra_role'] }, actorOf(res))));
  });

  r.delete('/releases/:id/artifacts/:role/:packageId', manager, async (req, res) => {
    res.json(releaseView(await d.releases.detach(releaseId(req), String(req.params['role']), String(req.params['packageId']), actorOf(res))));
  });

  r.post('/releases/:id/validate', manager, async (req, res) => {
    res.set('Cache-Control', 'no-store').json(await d.releases.validate(releaseId(req), actorOf(res)));
  });

  r.get('/releases/:id/manifest-body', manager, async (req, res) => {
    res.set('Cache-Control', 'no-store').json(await d.releases.manifestBody(releaseId(req)));
  });

  r.post('/releases/:id/publish', manager, json, async (req, res) => {
    const b = body(req);
    res.json(releaseView(await d.releases.publish(releaseId(req), { manifest_json: b['manifest_json'], signature: b['signature'] }, actorOf(res))));
  });

  r.post('/releases/:id/resign', manager, json, async (req, res) => {
    const b = body(req);
    res.json(releaseView(await d.releases.resign(releaseId(req), { manifest_json: b['manifest_json'], signature: b['signature'] }, actorOf(res))));
  });

  r.post('/releases/:id/deprecate', manager, json, async (req, res) => {
    const b = body(req);
    if (b['rollback_to'] === undefined) return void res.json(releaseView(await d.releases.deprecate(releaseId(req), b['message'], actorOf(res))));
    const { deprecated, rolled_back_to } = await d.releases.rollback(releaseId(req), b['message'], b['rollback_to'], actorOf(res));
    res.json({ deprecated: releaseView(deprecated), rolled_back_to: releaseView(rolled_back_to) });
  });

  r.get('/release-profiles', manager, async (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ profiles: await d.releases.listProfiles() });
  });

  r.put('/release-profiles/:name', manager, json, async (req, res) => {
    const b = body(req);
    res.json(await d.releases.putProfile(String(req.params['name']), { roles: b['roles'], description: b['description'] }, actorOf(res)));
  });

  return r;
}
