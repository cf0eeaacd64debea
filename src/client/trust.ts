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

  /**
   * What this client accepted from registry `registryId` on `channel`: the higher of the entry under
   * the id and a format 1 entry under the URL being pulled from, so a migration never lowers it.
   */
  get(registryId: string, channel: string, registryUrl: string): ChannelTrust | null {
    const file = this.#read();
    const byId = file.registries[registryId]?.[channel] ?? null;
    const byUrl = file.urls[urlKey(registryUrl, channel)] ?? null;
    if (byId === null || (byUrl !== null && byUrl.sequence > byId.sequence)) return byUrl;
    return byId;
  }

  /** Records a newly accepted manifest (callers have checked it is not older), replacing the URL entry it supersedes. Atomic. */
  save(registryId: string, channel: string, registryUrl: string, state: ChannelTrust): void {
    const file = this.#read();
    file.registries[registryId] = { ...file.registries[registryId], [channel]: state };
    delete file.urls[urlKey(registryUrl, channel)];
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
  }
}
