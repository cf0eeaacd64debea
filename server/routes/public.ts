/** Read endpoints for apps and the CLI: health, metrics, pack discovery, manifests, keys. */
import type { Router } from 'express';
import * as api from '../../src/api/core/packs.js';
import { DEFAULT_PAGE } from '../../src/api/core/common.js';
import type { IncomingMessage } from 'node:http';
import { IqpError } from '../../src/errors.js';
import { isSemver } from '../../src/pack/manifest.js';
import type { ServerConfig } from '../config.js';
import { requestBase } from '../http/base-url.js';
import type { CachedRoute, JsonCache } from '../http/json-cache.js';
import type { Metrics } from '../metrics.js';
import type { PluginStatus } from '../plugins/host.js';
import { packStatus, parseAppVersion, type PackService } from '../services/packs.js';
import type { KeyService } from '../services/keys.js';
import type { BlobStore, MetadataStore, PackRecord } from '../stores/types.js';
import { ANSWERED, reply } from '../http/contract.js';
import { declaredRouter, type RouteContract } from './mount.js';

/** The base of links in an answer (see http/base-url.ts); throws IQP_E_INVALID_HOST for a bad Host. */
export function baseUrl(req: IncomingMessage, config: ServerConfig): string {
  return requestBase(req, config);
}

/** The cached answers below, and what each depends on (http/json-cache.ts). Literal paths before the patterns they overlap, as registered. */
export const PUBLIC_CACHED = {
  keys: { route: '/v1/keys', query: [], links: false },
  packs: { route: '/v1/packs', query: ['limit', 'cursor'], links: false },
  available: { route: '/v1/packs/available', query: ['app_version', 'type', 'lang', 'prerelease'], links: true },
  versions: { route: '/v1/packs/:id', query: [], links: true },
  manifest: { route: '/v1/packs/:id/:version/manifest', query: [], links: true },
} as const satisfies Record<string, CachedRoute>;

export function downloadUrl(base: string, p: Pick<PackRecord, 'package_id' | 'version'>): string {
  return `${base}/v1/packs/${encodeURIComponent(p.package_id)}/download?version=${encodeURIComponent(p.version)}`;
}

export function manifestUrl(base: string, p: Pick<PackRecord, 'package_id' | 'version'>): string {
  return `${base}/v1/packs/${encodeURIComponent(p.package_id)}/${encodeURIComponent(p.version)}/manifest`;
}

/** What the registry serves for one pack version: the manifest plus what cannot live inside the archive. */
export function manifestResponse(base: string, p: PackRecord) {
  return {
    ...p.manifest,
    size_bytes: p.size_bytes,
    sha256: p.sha256,
    status: packStatus(p),
    deprecated_message: p.deprecated_message,
    published_at: p.published_at,
    signer_key_id: p.signer_key_id,
    signature: p.signature,
    manifest_json: p.manifest_json,
    download_url: downloadUrl(base, p),
  };
}

function summary(base: string, p: PackRecord) {
  const m = p.manifest;
  return {
    package_id: p.package_id,
    version: p.version,
    package_type: p.package_type,
    language_code: p.language_code,
    name: m.name,
    description: m.description,
    min_app_version: p.min_app_version,
    size_bytes: p.size_bytes,
    sha256: p.sha256,
    signer_key_id: p.signer_key_id,
    tables: m.tables.map((t) => ({ name: t.name, row_count: t.row_count })),
    manifest_url: manifestUrl(base, p),
    download_url: downloadUrl(base, p),
  };
}

export interface PublicDeps {
  readonly config: ServerConfig;
  readonly packs: PackService;
  readonly keys: KeyService;
  readonly meta: MetadataStore;
  readonly blobs: BlobStore;
  readonly cache: JsonCache;
  readonly metrics: Metrics;
  readonly log: (line: Record<string, unknown>) => void;
  /** The plugins' state: any that failed makes the registry "degraded" (it still serves, so 200). */
  readonly plugins?: () => PluginStatus;
}

export function publicRoutes(d: PublicDeps, contract: RouteContract): Router {
  const { router, mount } = declaredRouter(contract);

  mount(api.health, async () => {
    const checks: Record<string, 'ok' | 'failed'> = {};
    let ok = true;
    for (const [name, check] of [
      ['database', () => d.meta.health()],
      ['blobs', () => d.blobs.health()],
    ] as const) {
      try {
        await check();
        checks[name] = 'ok';
      } catch (err) {
        ok = false;
        // Why (with the server's paths) is for the operator's log, not for anyone who asks.
        checks[name] = 'failed';
        d.log({ level: 'error', msg: 'health check failed', check: name, error: String((err as Error)?.stack ?? err) });
      }
    }
    const noStore = { 'Cache-Control': 'no-store' };
    const status = d.plugins?.();
    // Said only when there are plugins, so a registry without any answers as it always has.
    const plugins = status && status.loaded.length + status.failed.length > 0 ? { plugins: status } : {};
    if (!ok) return reply(503, { status: 'unavailable', checks, ...plugins, error: { code: 'IQP_E_UNAVAILABLE', message: 'The registry is not healthy.' } }, noStore);
    return reply(200, { status: (status?.failed.length ?? 0) > 0 ? 'degraded' : 'ok', checks, ...plugins }, noStore);
  });

  mount(api.metrics, async (_input, _req, res) => {
    res.set('Content-Type', d.metrics.registry.contentType).set('Cache-Control', 'no-store').send(await d.metrics.render());
    return ANSWERED;
  });

  mount(api.keys, async (_input, req, res, checked) => {
    await d.cache.send(req, res, PUBLIC_CACHED.keys, async () =>
      checked({ keys: (await d.keys.list()).map((k) => ({ key_id: k.key_id, name: k.name, purpose: k.purpose, public_key: k.public_key, added_at: k.added_at })) }),
    );
    return ANSWERED;
  });

  mount(api.list, async ({ query }, req, res, checked) => {
    const limit = query.limit ?? DEFAULT_PAGE;
    await d.cache.send(req, res, PUBLIC_CACHED.packs, async () => {
      const page = await d.meta.listPackIds(limit, query.cursor ?? null);
      return checked({ packs: page.items, paging: { limit, next_cursor: page.next_cursor, has_more: page.has_more } });
    });
    return ANSWERED;
  });

  mount(api.available, async ({ query }, req, res, checked) => {
    const appVersion = parseAppVersion(query.app_version);
    const { type, lang } = query;
    const includePrerelease = query.prerelease === 'true';
    await d.cache.send(req, res, PUBLIC_CACHED.available, async (base) =>
      checked({
        app_version: appVersion,
        packs: (await d.packs.available({ ...(type ? { type } : {}), ...(lang ? { lang } : {}), appVersion, includePrerelease })).map((p) => summary(base, p)),
      }),
    );
    return ANSWERED;
  });

  mount(api.versions, async ({ params }, req, res, checked) => {
    await d.cache.send(req, res, PUBLIC_CACHED.versions, async (base) =>
      checked({
        package_id: params.id,
        versions: (await d.packs.versions(params.id)).map((p) => ({
          version: p.version,
          status: packStatus(p),
          deprecated_message: p.deprecated_message,
          published_at: p.published_at,
          min_app_version: p.min_app_version,
          size_bytes: p.size_bytes,
          sha256: p.sha256,
          signer_key_id: p.signer_key_id,
          manifest_url: manifestUrl(base, p),
          download_url: downloadUrl(base, p),
        })),
      }),
    );
    return ANSWERED;
  });

  mount(api.manifest, async ({ params }, req, res, checked) => {
    if (!isSemver(params.version)) throw new IqpError('IQP_E_INVALID_VERSION', `${JSON.stringify(params.version)} is not a semver version.`);
    await d.cache.send(req, res, PUBLIC_CACHED.manifest, async (base) => checked(manifestResponse(base, await d.packs.get(params.id, params.version))));
    return ANSWERED;
  });

  return router;
}
