/**
 * Release trust state: per registry id and channel, the newest signed release manifest this client
 * has accepted. It only moves forward, and is saved only after every check of a pull has passed
 * (docs/client-verification.md, step 11).
 *
 * Keyed by the registry id signed into each manifest, not by the URL it came from: a registry
 * moved to a CDN, a mirror or another port (or restored from an old backup somewhere else) is the
 * same registry, and must not get a fresh start at sequence 1. Files written before registry ids
 * (format 1) were keyed by URL; their entries are still honoured, and each moves to the registry
 * id the first time a manifest from that URL verifies.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import { IqpError } from '../errors.js';

export interface ChannelTrust {
  readonly sequence: number;
  readonly manifest_sha256: string;
  readonly expires_at: string;
  readonly release_id: number;
  readonly accepted_at: string;
  /** The registry URL the manifest came from (for people; not part of the key). */
  readonly accepted_from?: string;
}

interface TrustFile {
  format: 2;
  /** registry id → channel → state. */
  registries: Record<string, Record<string, ChannelTrust>>;
  /** `<registry URL> <channel>` → state, from a format 1 file, until a pull from that URL verifies. */
  urls: Record<string, ChannelTrust>;
}

function urlKey(registryUrl: string, channel: string): string {
  return `${registryUrl.replace(/\/+$/, '')} ${channel}`;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

type Accepted = Pick<ChannelTrust, 'sequence' | 'manifest_sha256'>;

/**
 * Whether a manifest is behind what was accepted: a lower sequence, or the same sequence with other
 * bytes. A pull refuses such a manifest as a rollback; a save never writes one over the state.
 */
export function isBehind(manifest: Accepted, accepted: Accepted | null): boolean {
  return accepted !== null && (manifest.sequence < accepted.sequence || (manifest.sequence === accepted.sequence && manifest.manifest_sha256 !== accepted.manifest_sha256));
}

/**
 * What `file` says was accepted from registry `registryId` on `channel`: the higher of the entry under
 * the id and a format 1 entry under the URL being pulled from, so a migration never lowers it.
 */
function accepted(file: TrustFile, registryId: string, channel: string, registryUrl: string): ChannelTrust | null {
  const byId = file.registries[registryId]?.[channel] ?? null;
  const byUrl = file.urls[urlKey(registryUrl, channel)] ?? null;
  if (byId === null || (byUrl !== null && byUrl.sequence > byId.sequence)) return byUrl;
  return byId;
}

export class TrustStore {
  constructor(readonly path: string) {}

  #read(): TrustFile {
    if (!existsSync(this.path)) return { format: 2, registries: {}, urls: {} };
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (err) {
      throw new IqpError('IQP_E_CONFIG', `${this.path}: the release trust state is not valid JSON (${(err as Error).message}). Restore it from a backup; deleting it forgets which releases were seen.`);
    }
    if (isRecord(value) && value['format'] === 1 && isRecord(value['channels'])) {
      return { format: 2, registries: {}, urls: value['channels'] as Record<string, ChannelTrust> };
    }
    if (isRecord(value) && value['format'] === 2 && isRecord(value['registries']) && Object.values(value['registries']).every(isRecord) && isRecord(value['urls'])) {
      return value as unknown as TrustFile;
    }
    throw new IqpError('IQP_E_CONFIG', `${this.path} is not an iqp release trust state file (format 1 or 2).`);
  }

  /** What this client accepted from registry `registryId` on `channel` (see accepted()). */
  get(registryId: string, channel: string, registryUrl: string): ChannelTrust | null {
    return accepted(this.#read(), registryId, channel, registryUrl);
  }

  /**
   * Records a newly accepted manifest, replacing the URL entry it supersedes, and returns what the
   * file now holds for the registry and channel. Atomic.
   *
   * The caller checked the manifest against the state it read when its pull began, but another pull
   * of the same registry and channel (another `iqp pull` at once) may have saved a newer one since.
   * So the file is read again here, just before the write, and a state on disk that `state` is
   * behind (a higher sequence, or the same with other bytes) is kept, not overwritten: the trust
   * state never goes back. Keeping it rather than refusing is deliberate: by now this pull's packs
   * are in place and were checked against a validly signed manifest, so the pull did succeed; only
   * the record of the newest manifest seen must not be lowered. The read and the write are
   * synchronous and a few milliseconds apart, where a pull's checks and downloads take minutes.
   */
  save(registryId: string, channel: string, registryUrl: string, state: ChannelTrust): ChannelTrust {
    const file = this.#read();
    const onDisk = accepted(file, registryId, channel, registryUrl);
    const kept = onDisk !== null && isBehind(state, onDisk) ? onDisk : state;
    file.registries[registryId] = { ...file.registries[registryId], [channel]: kept };
    delete file.urls[urlKey(registryUrl, channel)];
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
    return kept;
  }
}
