/** The release API as the CLI uses it, and the client side of signing a release manifest. */
import { IqpError } from '../errors.js';
import type { SecretKey } from '../pack/minisign.js';
import { type ReleaseManifestBody, signReleaseManifest, type ValidationReport } from '../pack/release-manifest.js';
import type { Static } from 'typebox';
import type * as api from '../api/core/releases.js';
import type { RegistryClient } from './registry.js';
export type { ValidationIssue, ValidationReport } from '../pack/release-manifest.js';

/** A release as the admin API shows it. */
export type ReleaseView = Static<typeof api.Release>;

/** GET /v1/releases/latest and /v1/releases/{id}/manifest. */
export type ReleaseManifestView = Static<typeof api.ServedRelease>;

export type ReleaseProfile = Static<typeof api.ReleaseProfile>;

export interface Paged<T> {
  readonly items: T[];
  readonly paging: { limit: number; next_cursor: string | null; has_more: boolean };
}

const admin = (path: string) => `/v1/admin/releases${path}`;

/** RFC 3339 UTC with second precision, as release manifests carry times. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class ReleaseApi {
  constructor(private readonly client: RegistryClient) {}

  create(input: { name: string; channel: string; min_app_version: string; notes?: string; roles?: string[]; profile?: string }): Promise<ReleaseView> {
    return this.client.json({ method: 'POST', path: admin(''), auth: true, json: input, expect: [201] });
  }

  get(id: number): Promise<ReleaseView> {
    return this.client.json({ method: 'GET', path: admin(`/${id}`), auth: true });
  }

  async list(filter: { channel?: string; status?: string; limit?: number; cursor?: string }): Promise<Paged<ReleaseView>> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) q.set(k, String(v));
    const res = await this.client.json<Static<typeof api.ReleaseList>>({ method: 'GET', path: admin(`?${q.toString()}`), auth: true });
    return { items: res.releases, paging: res.paging };
  }

  /** `extraRole` attaches in a role the release does not require (otherwise refused as a likely typo). */
  attach(id: number, role: string, packageId: string, version: string, extraRole = false): Promise<ReleaseView> {
    return this.client.json({
      method: 'POST',
      path: admin(`/${id}/artifacts`),
      auth: true,
      json: { role, package_id: packageId, version, ...(extraRole ? { extra_role: true } : {}) },
      expect: [200, 201],
    });
  }

  detach(id: number, role: string, packageId: string): Promise<ReleaseView> {
    return this.client.json({ method: 'DELETE', path: admin(`/${id}/artifacts/${encodeURIComponent(role)}/${encodeURIComponent(packageId)}`), auth: true });
  }

  validate(id: number): Promise<ValidationReport> {
    return this.client.json({ method: 'POST', path: admin(`/${id}/validate`), auth: true });
  }

  deprecate(id: number, message: string): Promise<ReleaseView> {
    return this.client.json({ method: 'POST', path: admin(`/${id}/deprecate`), auth: true, json: { message } });
  }

  putProfile(name: string, roles: string[], description: string): Promise<ReleaseProfile> {
    return this.client.json({ method: 'PUT', path: `/v1/admin/release-profiles/${encodeURIComponent(name)}`, auth: true, json: { roles, description } });
  }

  async profiles(): Promise<ReleaseProfile[]> {
    return (await this.client.json<Static<typeof api.ProfileList>>({ method: 'GET', path: '/v1/admin/release-profiles', auth: true })).profiles;
  }

  latest(channel: string, appVersion: string | null): Promise<ReleaseManifestView> {
    const q = new URLSearchParams({ channel });
    if (appVersion) q.set('app_version', appVersion);
    return this.client.json({ method: 'GET', path: `/v1/releases/latest?${q.toString()}` });
  }

  manifest(id: number): Promise<ReleaseManifestView> {
    return this.client.json({ method: 'GET', path: `/v1/releases/${id}/manifest` });
  }

  /**
   * Signs the registry's view of the release here, with the release manager's key, and sends the
   * signature: the key never leaves this machine. `mode` publishes a draft or re-signs a release.
   */
  async sign(id: number, key: SecretKey, mode: 'publish' | 'resign', expiresInDays: number, now: Date = new Date()): Promise<ReleaseView> {
    const signed = await this.#signBody(id, key, mode, expiresInDays, now);
    return this.client.json({ method: 'POST', path: admin(`/${id}/${mode}`), auth: true, json: signed });
  }

  /**
   * Deprecates release `id` and re-signs `target` (signed here, like resign) in one request, which
   * the registry applies in one transaction: `latest` goes forward to `target`, never back.
   */
  async rollback(id: number, message: string, target: number, key: SecretKey, expiresInDays: number, now: Date = new Date()): Promise<{ deprecated: ReleaseView; rolled_back_to: ReleaseView }> {
    const signed = await this.#signBody(target, key, 'resign', expiresInDays, now);
    return this.client.json({ method: 'POST', path: admin(`/${id}/deprecate`), auth: true, json: { message, rollback_to: { release_id: target, ...signed } } });
  }

  /** The registry's manifest body for release `id`, with the channel's next sequence, signed with `key`. */
  async #signBody(id: number, key: SecretKey, mode: 'publish' | 'resign', expiresInDays: number, now: Date): Promise<{ manifest_json: string; signature: string }> {
    const { body, next_sequence, status } = await this.client.json<{ body: ReleaseManifestBody; next_sequence: number; status: string }>({
      method: 'GET',
      path: admin(`/${id}/manifest-body`),
      auth: true,
    });
    if (mode === 'publish' && status !== 'draft') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is ${status}; only drafts are published (re-sign with iqp release resign).`);
    if (mode === 'resign' && status !== 'published') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is ${status}; only published releases are re-signed.`);
    const expires = new Date(now.getTime() + expiresInDays * 86_400_000);
    const signed = signReleaseManifest({ ...body, sequence: next_sequence, signed_at: rfc3339(now), expires_at: rfc3339(expires) }, key);
    return { manifest_json: signed.manifestJson, signature: signed.signature };
  }
}
