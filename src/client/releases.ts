/** The release API as the CLI uses it, and the client side of signing a release manifest. */
import { IqpError } from '../errors.js';
import type { SecretKey } from '../pack/minisign.js';
import { createHash } from 'node:crypto';
import {
  parseReleaseManifest,
  type ReleaseManifest,
  type ReleaseManifestBody,
  serializeReleaseManifest,
  signReleaseManifest,
  type ValidationReport,
  verifyReleaseManifest,
} from '../pack/release-manifest.js';
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
  async sign(id: number, key: SecretKey, mode: 'publish' | 'resign', expiresInDays: number, now: Date = new Date()): Promise<ReleaseView & { signed: SignedSummary }> {
    const { manifest_json, signature, summary } = await this.#signBody(id, key, mode, expiresInDays, now);
    const release = await this.client.json<ReleaseView>({ method: 'POST', path: admin(`/${id}/${mode}`), auth: true, json: { manifest_json, signature } });
    return { ...release, signed: summary };
  }

  /**
   * Deprecates release `id` and re-signs `target` (signed here, like resign) in one request, which
   * the registry applies in one transaction: `latest` goes forward to `target`, never back.
   */
  async rollback(id: number, message: string, target: number, key: SecretKey, expiresInDays: number, now: Date = new Date()): Promise<{ deprecated: ReleaseView; rolled_back_to: ReleaseView; signed: SignedSummary }> {
    const { manifest_json, signature, summary } = await this.#signBody(target, key, 'resign', expiresInDays, now);
    const out = await this.client.json<{ deprecated: ReleaseView; rolled_back_to: ReleaseView }>({
      method: 'POST',
      path: admin(`/${id}/deprecate`),
      auth: true,
      json: { message, rollback_to: { release_id: target, manifest_json, signature } },
    });
    return { ...out, signed: summary };
  }

  /** The channel's latest release, when its manifest verifies with `key` (else null: nothing of it can be trusted). */
  async #signedLatest(channel: string, key: SecretKey): Promise<ReleaseManifest | null> {
    let served: ReleaseManifestView;
    try {
      served = await this.latest(channel, null);
    } catch (err) {
      if (err instanceof IqpError && (err.code === 'IQP_E_NOT_FOUND' || err.code === 'IQP_E_CHANNEL_UNKNOWN')) return null;
      throw err;
    }
    try {
      return verifyReleaseManifest(served.manifest_json, served.signature, [key]).manifest;
    } catch {
      return null;
    }
  }

  /**
   * The registry's manifest body for release `id`, with the channel's next sequence, signed with
   * `key`. The registry is not trusted with what gets signed: only a well-formed manifest of release
   * `id`, with a sequence above the channel's latest that this key signed (and far from the top of
   * the range, so the channel can go on), is signed; anything else is refused with nothing sent.
   */
  async #signBody(id: number, key: SecretKey, mode: 'publish' | 'resign', expiresInDays: number, now: Date): Promise<{ manifest_json: string; signature: string; summary: SignedSummary }> {
    const answer = await this.client.json<{ body?: ReleaseManifestBody; next_sequence?: unknown; status?: unknown }>({
      method: 'GET',
      path: admin(`/${id}/manifest-body`),
      auth: true,
    });
    const { body, next_sequence, status } = answer ?? {};
    if (mode === 'publish' && status !== 'draft') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is ${status}; only drafts are published (re-sign with iqp release resign).`);
    if (mode === 'resign' && status !== 'published') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is ${status}; only published releases are re-signed.`);
    const refuse = (why: string) => new IqpError('IQP_E_REGISTRY', `The registry asked to sign ${why}; nothing was signed or sent.`);
    if (typeof body !== 'object' || body === null) throw refuse(`release ${id} without its manifest`);
    if (body.release_id !== id) throw refuse(`the manifest of release ${JSON.stringify(body.release_id)} for release ${id}`);
    if (typeof next_sequence !== 'number' || !Number.isSafeInteger(next_sequence) || next_sequence < 1 || next_sequence > MAX_SEQUENCE) {
      throw refuse(`release ${id} with sequence ${JSON.stringify(next_sequence)} (from 1 to ${MAX_SEQUENCE})`);
    }
    const expires = new Date(now.getTime() + expiresInDays * 86_400_000);
    const manifest: ReleaseManifest = { ...body, sequence: next_sequence, signed_at: rfc3339(now), expires_at: rfc3339(expires) };
    // Only what an app would accept: the same checks an app makes of a signed manifest.
    try {
      parseReleaseManifest(serializeReleaseManifest(manifest));
    } catch (err) {
      throw refuse(`a manifest an app would refuse (${(err as Error).message})`);
    }
    const latest = typeof body.channel === 'string' ? await this.#signedLatest(body.channel, key) : null;
    if (latest && next_sequence <= latest.sequence) throw refuse(`release ${id} with sequence ${next_sequence}, not above ${latest.sequence}, which this key signed for release ${latest.release_id} on ${body.channel}`);
    const signed = signReleaseManifest(manifest, key);
    const summary: SignedSummary = {
      release_id: id,
      channel: manifest.channel,
      sequence: next_sequence,
      expires_at: manifest.expires_at,
      manifest_sha256: createHash('sha256').update(signed.manifestJson).digest('hex'),
      artifacts: manifest.artifacts.map((a) => ({ role: a.role, package_id: a.package_id, version: a.version, sha256: a.sha256 })),
    };
    return { manifest_json: signed.manifestJson, signature: signed.signature, summary };
  }
}

/** The highest sequence signed here: far from 2^53, so a channel can always go on counting. */
const MAX_SEQUENCE = 2 ** 50;

/** What was signed on this machine, as the release manager is shown it. */
export interface SignedSummary {
  readonly release_id: number;
  readonly channel: string;
  readonly sequence: number;
  readonly expires_at: string;
  readonly manifest_sha256: string;
  readonly artifacts: ReadonlyArray<{ role: string; package_id: string; version: string; sha256: string }>;
}

/** The lines a release manager reads after signing: the manifest's checksum and every pack in it. */
export function describeSigned(s: SignedSummary): string {
  const lines = [`Signed here: release ${s.release_id} on ${s.channel}, sequence ${s.sequence}, expires ${s.expires_at}; manifest sha256 ${s.manifest_sha256}`];
  for (const a of s.artifacts) lines.push(`  ${a.role} ${a.package_id}@${a.version} sha256 ${a.sha256}`);
  return lines.join('\n');
}
