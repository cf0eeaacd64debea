/**
 * Release rules: a release groups published packs by role for one app version; it is validated,
 * then published with a manifest that a release manager signed on their own machine.
 */
import semver from 'semver';
import { IqpError, isIqpError } from '../../src/errors.js';
import { isSemver } from '../../src/pack/manifest.js';
import {
  RELEASE_MANIFEST_FORMAT,
  type ReleaseManifestBody,
  serializeReleaseManifest,
  type ValidationIssue,
  type ValidationReport,
  verifyReleaseManifest,
} from '../../src/pack/release-manifest.js';
import { artifactsKey, type ReleaseRecord, type ReleaseStatus, type ReleaseStore, type SignedReleaseManifest } from '../stores/release-types.js';
import type { MetadataStore, Page } from '../stores/types.js';
import type { Clock } from './clock.js';
import type { KeyService } from './keys.js';
import { parseAppVersion } from './packs.js';

export const ROLE_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

export interface CreateReleaseInput {
  readonly name: unknown;
  readonly channel: unknown;
  readonly notes?: unknown;
  readonly min_app_version: unknown;
  readonly roles?: unknown;
  readonly profile?: unknown;
}

export interface SignedInput {
  readonly manifest_json: unknown;
  readonly signature: unknown;
}

function usage(message: string): IqpError {
  return new IqpError('IQP_E_USAGE', message);
}

function roleList(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.some((r) => typeof r !== 'string' || !ROLE_PATTERN.test(r))) {
    throw usage(`${what} must be a list of role names (lowercase letters, digits, _ and -; starting with a letter).`);
  }
  return [...new Set(value as string[])];
}

export class ReleaseService {
  /** The registry id never changes (a trigger forbids it), so one read per process is enough. */
  #registryId: Promise<string> | null = null;

  constructor(
    private readonly releases: ReleaseStore,
    private readonly meta: MetadataStore,
    private readonly keys: KeyService,
    private readonly clock: Clock,
    readonly channels: readonly string[],
    /** Told about stored releases the read paths skip because the semver library rejects their min_app_version. */
    private readonly skipped: (release: ReleaseRecord) => void = () => {},
  ) {}

  registryId(): Promise<string> {
    this.#registryId ??= this.releases.registryId();
    return this.#registryId;
  }

  #channel(value: unknown): string {
    if (typeof value !== 'string' || !this.channels.includes(value)) {
      throw new IqpError('IQP_E_CHANNEL_UNKNOWN', `Unknown channel ${JSON.stringify(value)}; this registry has ${this.channels.join(', ')}.`, { channels: this.channels });
    }
    return value;
  }

  async get(id: number): Promise<ReleaseRecord> {
    const release = Number.isSafeInteger(id) && id > 0 ? await this.releases.getRelease(id) : null;
    if (!release) throw new IqpError('IQP_E_NOT_FOUND', `No release ${id}.`, { release_id: id });
    return release;
  }

  list(limit: number, cursor: string | null, filter: { channel?: string; status?: ReleaseStatus }): Promise<Page<ReleaseRecord>> {
    if (filter.channel !== undefined) this.#channel(filter.channel);
    if (filter.status !== undefined && !['draft', 'published', 'deprecated'].includes(filter.status)) throw usage('status must be draft, published or deprecated.');
    return this.releases.listReleases(limit, cursor, filter);
  }

  async create(input: CreateReleaseInput, actor: string): Promise<ReleaseRecord> {
    if (typeof input.name !== 'string' || input.name.trim() === '' || input.name.length > 100 || /[\u0000-\u001f]/.test(input.name)) {
      throw usage('name must be 1-100 printable characters, e.g. 2026.11.');
    }
    const channel = this.#channel(input.channel);
    const notes = input.notes ?? '';
    if (typeof notes !== 'string' || notes.length > 10_000) throw usage('notes must be a string of at most 10000 characters.');
    if (!isSemver(input.min_app_version)) {
      throw new IqpError('IQP_E_INVALID_VERSION', `min_app_version ${JSON.stringify(input.min_app_version)} is not a semver version.`);
    }
    let roles = input.roles === undefined ? [] : roleList(input.roles, 'roles');
    let profile: string | null = null;
    if (input.profile !== undefined && input.profile !== null) {
      if (typeof input.profile !== 'string') throw usage('profile must be the name of a release profile.');
      const found = await this.releases.getProfile(input.profile);
      if (!found) throw new IqpError('IQP_E_NOT_FOUND', `No release profile ${JSON.stringify(input.profile)}.`, { profile: input.profile });
      profile = found.name;
      roles = [...new Set([...found.roles, ...roles])];
    }
    if (roles.length === 0) throw usage('A release needs at least one required role (roles, or a profile).');
    const created = await this.releases.createRelease({
      name: input.name.trim(),
      channel,
      notes,
      min_app_version: input.min_app_version,
      required_roles: roles.sort(),
      profile,
      created_at: this.clock.now(),
      created_by: actor,
    });
    if (created === 'exists') throw new IqpError('IQP_E_RELEASE_EXISTS', `Channel ${channel} already has a release named ${input.name.trim()}.`);
    return created;
  }

  async attach(id: number, input: { role?: unknown; package_id?: unknown; version?: unknown; extra_role?: unknown }, actor: string): Promise<ReleaseRecord> {
    if (typeof input.role !== 'string' || !ROLE_PATTERN.test(input.role)) throw usage('role must be a role name such as text, translation or recitation.');
    if (typeof input.package_id !== 'string' || input.package_id === '') throw usage('package_id is required.');
    if (!isSemver(input.version)) throw new IqpError('IQP_E_INVALID_VERSION', `version ${JSON.stringify(input.version)} is not a semver version.`);
    if (input.extra_role !== undefined && typeof input.extra_role !== 'boolean') throw usage('extra_role must be true or false.');
    const release = await this.get(id);
    if (release.status !== 'draft') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is ${release.status}; only drafts take new artifacts.`);
    const pack = await this.meta.getPack(input.package_id, input.version);
    if (!pack) throw new IqpError('IQP_E_NOT_FOUND', `No published pack ${input.package_id}@${input.version}.`, { package_id: input.package_id, version: input.version });
    if (pack.deprecated_at !== null) {
      throw new IqpError('IQP_E_PACK_NOT_ATTACHABLE', `${pack.package_id}@${pack.version} is deprecated: ${pack.deprecated_message ?? ''}`, { package_id: pack.package_id, version: pack.version });
    }
    // A role the release does not require is far more often a typo than a wish: it would pass
    // validation with a warning while the required role stays empty.
    if (!release.required_roles.includes(input.role) && input.extra_role !== true) {
      throw new IqpError(
        'IQP_E_ROLE_UNKNOWN',
        `Release ${id} does not require role ${input.role}; it requires ${release.required_roles.join(', ')}.`,
        { role: input.role, required_roles: release.required_roles },
        { hint: `Check the spelling (one of ${release.required_roles.join(', ')}), or attach it anyway with --extra-role (extra_role: true).` },
      );
    }
    const result = await this.releases.attachArtifact(id, { role: input.role, package_id: pack.package_id, version: pack.version, attached_at: this.clock.now() }, actor);
    if (result === 'not-draft') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is no longer a draft.`);
    if (result === 'no-pack') throw new IqpError('IQP_E_NOT_FOUND', `No published pack ${pack.package_id}@${pack.version}.`);
    return this.get(id);
  }

  async detach(id: number, role: string, packageId: string, actor: string): Promise<ReleaseRecord> {
    await this.get(id);
    const result = await this.releases.detachArtifact(id, role, packageId, this.clock.now(), actor);
    if (result === 'missing') throw new IqpError('IQP_E_NOT_FOUND', `Release ${id} has no ${packageId} in role ${role}.`);
    if (result === 'not-draft') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is no longer a draft.`);
    return this.get(id);
  }

  /** Every check a release must pass before it is published. */
  async check(release: ReleaseRecord): Promise<ValidationReport> {
    const failures: ValidationIssue[] = [];
    const warnings: ValidationIssue[] = [];
    for (const role of release.required_roles) {
      const inRole = release.artifacts.filter((a) => a.role === role);
      if (inRole.length === 0) failures.push({ code: 'role_missing', role, message: `Required role ${role} has no pack attached.` });
      if (inRole.length > 1) {
        failures.push({ code: 'role_duplicate', role, message: `Role ${role} has ${inRole.length} packs (${inRole.map((a) => a.package_id).join(', ')}); it needs exactly one.` });
      }
    }
    for (const a of release.artifacts) {
      const artifact = `${a.package_id}@${a.version}`;
      if (!release.required_roles.includes(a.role)) warnings.push({ code: 'role_not_required', role: a.role, artifact, message: `Role ${a.role} is not one the release requires.` });
      const pack = await this.meta.getPack(a.package_id, a.version);
      if (!pack) {
        failures.push({ code: 'pack_missing', role: a.role, artifact, message: `${artifact} is not published.` });
        continue;
      }
      if (pack.deprecated_at !== null) failures.push({ code: 'pack_deprecated', role: a.role, artifact, message: `${artifact} is deprecated: ${pack.deprecated_message ?? ''}` });
      if (!/^[0-9a-f]{64}$/.test(pack.sha256) || !(pack.size_bytes > 0) || !pack.signature || !pack.signer_key_id) {
        failures.push({ code: 'metadata_missing', role: a.role, artifact, message: `${artifact} lacks checksum, size or signature metadata.` });
      }
      if (!isSemver(pack.min_app_version) || !isSemver(pack.version)) {
        failures.push({ code: 'invalid_version', role: a.role, artifact, message: `${artifact} has a version or min_app_version (${pack.min_app_version}) that is not valid semver; deprecate it and attach another.` });
      } else if (isSemver(release.min_app_version) && semver.gt(pack.min_app_version, release.min_app_version)) {
        failures.push({
          code: 'min_app_version',
          role: a.role,
          artifact,
          message: `${artifact} needs app ${pack.min_app_version}, above the release's min_app_version ${release.min_app_version}.`,
        });
      }
      const newer = (await this.meta.listVersions(a.package_id)).filter(
        (p) => p.deprecated_at === null && isSemver(p.version) && isSemver(a.version) && semver.gt(p.version, a.version) && !semver.prerelease(p.version),
      );
      if (newer.length > 0) warnings.push({ code: 'newer_version', role: a.role, artifact, message: `${a.package_id} has a newer version: ${newer.map((p) => p.version).join(', ')}.` });
    }
    if ((await this.keys.list('release')).length === 0) {
      warnings.push({ code: 'no_release_keys', message: 'No release keys are registered; publishing needs one (iqp keys add --purpose release).' });
    }
    return { ok: failures.length === 0, failures, warnings };
  }

  async validate(id: number, actor: string): Promise<ValidationReport> {
    const release = await this.get(id);
    const report = await this.check(release);
    await this.releases.appendAudit({
      at: this.clock.now(),
      actor,
      action: 'release.validate',
      target: `release:${id}`,
      details: { result: { ok: report.ok, failures: report.failures.map((f) => f.code), warnings: report.warnings.map((w) => w.code) } },
    });
    return report;
  }

  /** The manifest the registry expects to see signed for this release, and the sequence it must carry. */
  async manifestBody(id: number): Promise<{ body: ReleaseManifestBody; next_sequence: number; status: ReleaseStatus }> {
    const release = await this.get(id);
    const artifacts = [];
    for (const a of release.artifacts) {
      const pack = await this.meta.getPack(a.package_id, a.version);
      if (!pack) throw new IqpError('IQP_E_NOT_FOUND', `${a.package_id}@${a.version} is attached but not published.`);
      artifacts.push({
        role: a.role,
        package_id: pack.package_id,
        version: pack.version,
        size_bytes: pack.size_bytes,
        sha256: pack.sha256,
        signer_key_id: pack.signer_key_id,
        download_path: `/v1/packs/${encodeURIComponent(pack.package_id)}/download?version=${encodeURIComponent(pack.version)}`,
      });
    }
    const body: ReleaseManifestBody = {
      format: RELEASE_MANIFEST_FORMAT,
      kind: 'iqp-release',
      registry_id: await this.registryId(),
      release_id: release.id,
      name: release.name,
      channel: release.channel,
      min_app_version: release.min_app_version,
      notes: release.notes,
      artifacts,
    };
    return { body, next_sequence: (await this.releases.channelSequence(release.channel)) + 1, status: release.status };
  }

  /**
   * The signature checked against the release keys. A key that is not one is named as what it is
   * here: most often the pack key, passed where the release key belongs (details.purpose says which,
   * so the CLI can point to the fix).
   */
  async #verify(manifestJson: string, signature: string, trusted: Parameters<typeof verifyReleaseManifest>[2]) {
    try {
      return verifyReleaseManifest(manifestJson, signature, trusted);
    } catch (err) {
      if (!isIqpError(err, 'IQP_E_SIG_UNTRUSTED_KEY')) throw err;
      const keyId = String(err.details?.['keyId']);
      const registered = (await this.keys.list()).find((k) => k.key_id === keyId);
      const what = registered ? ` (${registered.name}), which this registry has registered for ${registered.purpose}s, not releases` : ', which is not a registered release key';
      throw new IqpError('IQP_E_SIG_UNTRUSTED_KEY', `The release manifest is signed by key ${keyId}${what}.`, { ...err.details, purpose: registered?.purpose ?? null }, { cause: err });
    }
  }

  /** Checks a signed manifest against release keys and against what the registry derives itself. */
  async #checkSigned(release: ReleaseRecord, input: SignedInput): Promise<SignedReleaseManifest> {
    if (typeof input.manifest_json !== 'string' || typeof input.signature !== 'string') {
      throw usage('manifest_json (the signed release manifest) and signature (its .minisig text) are required.');
    }
    const trusted = await this.keys.trusted('release');
    if (trusted.length === 0) throw new IqpError('IQP_E_SIG_UNTRUSTED_KEY', 'No release keys are registered; an admin adds one with `iqp keys add --purpose release`.');
    const { manifest, keyId } = await this.#verify(input.manifest_json, input.signature, trusted);
    const own = await this.registryId();
    if (manifest.registry_id !== own) {
      // Accepting it would let clients file this release under another registry's rollback state.
      throw new IqpError('IQP_E_RELEASE_MANIFEST', `The manifest is signed for registry ${manifest.registry_id}; this registry is ${own}. Sign the manifest body this registry serves.`, {
        registry_id: own,
        signed_registry_id: manifest.registry_id,
      });
    }
    const { body } = await this.manifestBody(release.id);
    const expected = serializeReleaseManifest({ ...body, sequence: manifest.sequence, signed_at: manifest.signed_at, expires_at: manifest.expires_at });
    if (!expected.equals(Buffer.from(input.manifest_json, 'utf8'))) {
      throw new IqpError('IQP_E_RELEASE_MANIFEST', 'The signed manifest does not describe this release as the registry has it (artifacts, name, channel or notes differ); sign again.');
    }
    if (Date.parse(manifest.expires_at) <= Date.parse(this.clock.now())) throw new IqpError('IQP_E_RELEASE_EXPIRED', `The manifest expired at ${manifest.expires_at}.`);
    // The sequence is checked by the store, in the same transaction as the state: checked here
    // first, a request that lost a race to publish this very release would hear "sign again".
    return { sequence: manifest.sequence, manifest_json: input.manifest_json, signature: input.signature, signer_key_id: keyId, expires_at: manifest.expires_at };
  }

  async #sequenceError(channel: string, sequence: number): Promise<IqpError> {
    const next = (await this.releases.channelSequence(channel)) + 1;
    return new IqpError('IQP_E_RELEASE_SEQUENCE', `The manifest carries sequence ${sequence}; channel ${channel} is at ${next - 1}, so the next is ${next}; sign again.`, { next_sequence: next });
  }

  async publish(id: number, input: SignedInput, actor: string): Promise<ReleaseRecord> {
    const release = await this.get(id);
    if (release.status !== 'draft') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is already ${release.status}.`);
    const report = await this.check(release);
    if (!report.ok) throw new IqpError('IQP_E_RELEASE_INVALID', `Release ${id} fails validation: ${report.failures.map((f) => f.message).join(' ')}`, { failures: report.failures });
    const signed = await this.#checkSigned(release, input);
    const result = await this.releases.publishRelease(id, signed, artifactsKey(release.artifacts), this.clock.now(), actor);
    if (result === 'not-draft') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} was published by someone else meanwhile.`);
    if (result === 'sequence') throw await this.#sequenceError(release.channel, signed.sequence);
    if (result === 'stale') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id}'s artifacts changed while it was being signed; sign again.`);
    return this.get(id);
  }

  async resign(id: number, input: SignedInput, actor: string): Promise<ReleaseRecord> {
    const release = await this.get(id);
    if (release.status !== 'published') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is ${release.status}; only published releases are re-signed.`);
    // Re-signing makes a release current again (a rollback moves forward): it must still be valid,
    // e.g. none of its packs deprecated since it was published.
    const report = await this.check(release);
    if (!report.ok) throw new IqpError('IQP_E_RELEASE_INVALID', `Release ${id} no longer passes validation: ${report.failures.map((f) => f.message).join(' ')}`, { failures: report.failures });
    const signed = await this.#checkSigned(release, input);
    const result = await this.releases.resignRelease(id, signed, artifactsKey(release.artifacts), this.clock.now(), actor);
    if (result === 'not-published') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is no longer published.`);
    if (result === 'sequence') throw await this.#sequenceError(release.channel, signed.sequence);
    if (result === 'stale') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id}'s artifacts changed; sign again.`);
    return this.get(id);
  }

  async deprecate(id: number, message: unknown, actor: string): Promise<ReleaseRecord> {
    const release = await this.#deprecatable(id, message);
    const result = await this.releases.deprecateRelease(id, message as string, this.clock.now(), actor);
    if (result !== 'deprecated') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${release.id} is no longer published.`);
    return this.get(id);
  }

  async #deprecatable(id: number, message: unknown): Promise<ReleaseRecord> {
    if (typeof message !== 'string' || message.trim() === '' || message.length > 2000) throw usage('message (why the release is withdrawn) is required, at most 2000 characters.');
    const release = await this.get(id);
    if (release.status !== 'published') {
      throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is ${release.status}; only published releases can be deprecated.`);
    }
    return release;
  }

  /**
   * Deprecates release `id` and, in the same transaction, re-signs `rollbackTo.release_id` (a
   * published release of the same channel) with the signed manifest given: deprecating the newest
   * release alone would make `latest` serve an older sequence, which every client that took the
   * newer one refuses as a rollback.
   */
  async rollback(id: number, message: unknown, rollbackTo: unknown, actor: string): Promise<{ deprecated: ReleaseRecord; rolled_back_to: ReleaseRecord }> {
    const release = await this.#deprecatable(id, message);
    if (typeof rollbackTo !== 'object' || rollbackTo === null || Array.isArray(rollbackTo)) {
      throw usage('rollback_to must be an object: { release_id, manifest_json, signature } (the re-signed previous release).');
    }
    const to = rollbackTo as { release_id?: unknown; manifest_json?: unknown; signature?: unknown };
    if (typeof to.release_id !== 'number' || !Number.isSafeInteger(to.release_id) || to.release_id < 1) throw usage('rollback_to.release_id must be a release id.');
    if (to.release_id === id) throw usage(`Release ${id} cannot be rolled back to itself; name the previous release.`);
    const target = await this.get(to.release_id);
    if (target.channel !== release.channel) {
      throw usage(`Release ${target.id} is on channel ${target.channel}; a rollback of release ${id} goes to a release of ${release.channel}.`);
    }
    if (target.status !== 'published') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${target.id} is ${target.status}; only a published release can be rolled back to.`);
    const report = await this.check(target);
    if (!report.ok) throw new IqpError('IQP_E_RELEASE_INVALID', `Release ${target.id} no longer passes validation: ${report.failures.map((f) => f.message).join(' ')}`, { failures: report.failures });
    const signed = await this.#checkSigned(target, { manifest_json: to.manifest_json, signature: to.signature });
    const result = await this.releases.rollbackRelease(id, message as string, target.id, signed, artifactsKey(target.artifacts), this.clock.now(), actor);
    if (result !== 'rolled-back') {
      if ('deprecate' in result) throw new IqpError('IQP_E_RELEASE_STATE', `Release ${id} is no longer published.`);
      if (result.resign === 'sequence') throw await this.#sequenceError(target.channel, signed.sequence);
      if (result.resign === 'stale') throw new IqpError('IQP_E_RELEASE_STATE', `Release ${target.id}'s artifacts changed; sign again.`);
      throw new IqpError('IQP_E_RELEASE_STATE', `Release ${target.id} is no longer published.`);
    }
    return { deprecated: await this.get(id), rolled_back_to: await this.get(target.id) };
  }

  /** The newest published, non-deprecated release of the channel that this app version can use. */
  async latest(channelParam: unknown, appVersionParam: unknown): Promise<ReleaseRecord> {
    const channel = this.#channel(channelParam ?? 'stable');
    const appVersion = parseAppVersion(appVersionParam);
    const candidates = await this.releases.listPublished(channel);
    // A release stored by an older registry with a min_app_version the library rejects is skipped
    // (and reported), not compared: comparing it would throw and fail the request for every app.
    const found = candidates.find((r) => {
      if (!isSemver(r.min_app_version)) {
        this.skipped(r);
        return false;
      }
      return appVersion === null || semver.lte(r.min_app_version, appVersion);
    });
    if (!found) {
      throw new IqpError('IQP_E_NOT_FOUND', `No published release on ${channel}${appVersion ? ` for app ${appVersion}` : ''}.`, { channel, app_version: appVersion });
    }
    return found;
  }

  async putProfile(name: string, input: { roles?: unknown; description?: unknown }, actor: string) {
    if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(name)) throw usage('Profile names are lowercase letters, digits, _ . and -.');
    const roles = roleList(input.roles, 'roles');
    if (roles.length === 0) throw usage('A profile needs at least one role.');
    const description = input.description ?? '';
    if (typeof description !== 'string' || description.length > 2000) throw usage('description must be a string.');
    const profile = { name, roles: roles.sort(), description, updated_at: this.clock.now() };
    await this.releases.upsertProfile(profile, actor);
    return profile;
  }

  listProfiles() {
    return this.releases.listProfiles();
  }
}
