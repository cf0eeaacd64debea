/** Publisher keys: the public keys whose signatures the registry accepts on uploads. */
import semver from 'semver';
import { IqpError } from '../../src/errors.js';
import { formatPublicKeyFile, parsePublicKey, type PublicKey } from '../../src/pack/minisign.js';
import type { KeyPurpose, MetadataStore, PackRecord, PublisherKey } from '../stores/types.js';
import type { Clock } from './clock.js';

/**
 * Whether every app offered `pack` is offered a newer version of it instead: one not deprecated,
 * for the same apps or more (min_app_version no higher), and a stable version unless `pack` is a
 * pre-release (apps see pre-releases only when they ask for them). A version that does not parse is
 * never taken as superseded: better to keep a key than to break an app.
 */
export function isSuperseded(pack: PackRecord, active: readonly PackRecord[]): boolean {
  if (!semver.valid(pack.version) || !semver.valid(pack.min_app_version)) return false;
  const pre = semver.prerelease(pack.version) !== null;
  return active.some(
    (p) =>
      p.package_id === pack.package_id &&
      semver.valid(p.version) !== null &&
      semver.valid(p.min_app_version) !== null &&
      semver.gt(p.version, pack.version) &&
      semver.lte(p.min_app_version, pack.min_app_version) &&
      (pre || semver.prerelease(p.version) === null),
  );
}

/** The packs of every published, non-deprecated release, by release id. */
export type ReleasedPacks = () => Promise<readonly { release_id: number; package_id: string; version: string }[]>;

export class KeyService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly clock: Clock,
    private readonly releasedPacks: ReleasedPacks = async () => [],
  ) {}

  async add(publicKey: string, name: string, actor: string, purpose: KeyPurpose = 'pack'): Promise<{ status: 'created' | 'exists'; key: PublisherKey }> {
    if (purpose !== 'pack' && purpose !== 'release') throw new IqpError('IQP_E_USAGE', 'purpose must be "pack" or "release".');
    const parsed = parsePublicKey(publicKey);
    const key: PublisherKey = {
      key_id: parsed.keyId,
      public_key: formatPublicKeyFile(parsed),
      name: name.trim() || parsed.keyId,
      added_at: this.clock.now(),
      purpose,
    };
    const status = await this.meta.addKey(key, { at: key.added_at, actor, action: 'key.add', target: `key:${key.key_id}`, details: { after: { name: key.name, purpose } } });
    const stored = (await this.meta.listKeys()).find((k) => k.key_id === key.key_id)!;
    return { status, key: stored };
  }

  /**
   * Stops trusting a key. Apps verify packs against the keys listed here, so removing a key that
   * still signs a version they are offered would break them: that needs `force` (a compromised
   * key). A version that is deprecated, or superseded for every app (see isSuperseded), is not
   * offered, so its key may go: that is how a rotation ends (docs/runbook.md, "Rotating keys").
   */
  async remove(keyId: string, actor: string, force = false): Promise<void> {
    const id = keyId.toUpperCase();
    if (!force) {
      const active = await this.meta.listActive({});
      const signed = active.filter((p) => p.signer_key_id === id && !isSuperseded(p, active));
      if (signed.length > 0) {
        throw new IqpError('IQP_E_KEY_IN_USE', `Key ${id} signs ${signed.length} pack version(s) apps are offered, e.g. ${signed[0]!.package_id}@${signed[0]!.version}.`, {
          key_id: id,
          packs: signed.slice(0, 20).map((p) => `${p.package_id}@${p.version}`),
        });
      }
      // A release pins exact versions, superseded or not, and apps pulling it check each pack
      // against the keys listed here.
      const shipped: { release_id: number; pack: string }[] = [];
      for (const a of await this.releasedPacks()) {
        const pack = await this.meta.getPack(a.package_id, a.version);
        if (pack?.signer_key_id === id) shipped.push({ release_id: a.release_id, pack: `${a.package_id}@${a.version}` });
      }
      if (shipped.length > 0) {
        const releases = [...new Set(shipped.map((s) => s.release_id))].sort((a, b) => a - b);
        const packs = [...new Set(shipped.map((s) => s.pack))].sort();
        throw new IqpError(
          'IQP_E_KEY_IN_USE',
          `Key ${id} signs ${packs.length} pack version(s) that published release(s) ${releases.join(', ')} ship, e.g. ${packs[0]}.`,
          { key_id: id, releases: releases.slice(0, 20), packs: packs.slice(0, 20) },
          { hint: 'Publish a release whose packs are signed with another key and deprecate the releases named; pass --force only if the key is compromised.' },
        );
      }
    }
    const removed = await this.meta.removeKey(id, {
      at: this.clock.now(),
      actor,
      action: 'key.remove',
      target: `key:${id}`,
      details: force ? { forced: true } : null,
    });
    if (!removed) throw new IqpError('IQP_E_NOT_FOUND', `No publisher key ${keyId}.`, { key_id: keyId });
  }

  async list(purpose?: KeyPurpose): Promise<PublisherKey[]> {
    const keys = await this.meta.listKeys();
    return purpose ? keys.filter((k) => k.purpose === purpose) : keys;
  }

  /** Parsed public keys of one purpose, for signature checks. */
  async trusted(purpose: KeyPurpose): Promise<PublicKey[]> {
    return (await this.list(purpose)).map((k) => parsePublicKey(k.public_key));
  }
}
