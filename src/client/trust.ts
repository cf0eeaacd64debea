/**
 * Release trust state: per registry and channel, the newest signed release manifest this client
 * has accepted. It only moves forward, and is saved only after every check of a pull has passed
 * (docs/client-verification.md, step 11).
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
}

interface TrustFile {
  format: 1;
  /** `<registry URL> <channel>` → state. */
  channels: Record<string, ChannelTrust>;
}

function key(registry: string, channel: string): string {
  return `${registry.replace(/\/+$/, '')} ${channel}`;
}

export class TrustStore {
  constructor(readonly path: string) {}

  #read(): TrustFile {
    if (!existsSync(this.path)) return { format: 1, channels: {} };
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (err) {
      throw new IqpError('IQP_E_CONFIG', `${this.path}: the release trust state is not valid JSON (${(err as Error).message}). Restore it from a backup; deleting it forgets which releases were seen.`);
    }
    const file = value as TrustFile;
    if (file?.format !== 1 || typeof file.channels !== 'object' || file.channels === null) {
      throw new IqpError('IQP_E_CONFIG', `${this.path} is not an iqp release trust state file.`);
    }
    return file;
  }

  get(registry: string, channel: string): ChannelTrust | null {
    return this.#read().channels[key(registry, channel)] ?? null;
  }

  /** Records a newly accepted manifest (callers have checked it is not older). Atomic. */
  save(registry: string, channel: string, state: ChannelTrust): void {
    const file = this.#read();
    file.channels[key(registry, channel)] = state;
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
  }
}
