/**
 * Pack rules: what may be published, what an app version can use, what a manifest response holds.
 * Uploads are verified by the same code as `iqp verify` while they stream to a staged blob, and
 * committed blob-first: a crash can leave an unreferenced blob (swept at start), never a row
 * without its blob.
 */
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import semver from 'semver';
import { IqpError } from '../../src/errors.js';
import { DEFAULT_LIMITS } from '../../src/pack/format.js';
import { isSemver } from '../../src/pack/manifest.js';
import type { BlobStore, MetadataStore, PackRecord } from '../stores/types.js';
import type { Clock } from './clock.js';
import { verifyOnThread } from './verify-thread.js';

export interface UploadResult {
  readonly status: 'created' | 'identical';
  readonly pack: PackRecord;
}

export interface PackEvents {
  uploaded(result: 'created' | 'identical' | 'rejected', bytes: number): void;
  /** A stored record the read paths skip (see usableVersions); reported once per record and process. */
  skipped?(record: { package_id: string; version: string; min_app_version: string }, field: 'version' | 'min_app_version'): void;
}

/** Bytes of an upload gathered into one write of its staged copy. */
const WRITE_BATCH = 1024 * 1024;

/** Package ids that would collide with registry paths under /v1/packs/. */
const RESERVED_IDS = new Set(['available']);

export function parseAppVersion(raw: unknown, name = 'app_version'): string | null {
  if (raw === undefined || raw === '') return null;
  if (typeof raw !== 'string' || !isSemver(raw)) {
    throw new IqpError('IQP_E_INVALID_VERSION', `${name} ${JSON.stringify(raw)} is not a semver version.`, { parameter: name });
  }
  return raw;
}

export function packStatus(p: PackRecord): 'published' | 'deprecated' {
  return p.deprecated_at === null ? 'published' : 'deprecated';
}

/**
 * Newest first by semver precedence. A version stored by an older registry that the semver library
 * rejects (isSemver is stricter now) sorts last instead of throwing, so the listing still answers.
 */
export function bySemverDesc(a: PackRecord, b: PackRecord): number {
  const okA = isSemver(a.version);
  const okB = isSemver(b.version);
  if (okA && okB) return semver.rcompare(a.version, b.version);
  if (okA !== okB) return okA ? -1 : 1;
  return a.version < b.version ? -1 : a.version > b.version ? 1 : 0;
}

/**
 * Resolved pack records kept while the store's change counter stays put, so pack downloads cost no
 * database read but that counter's.
 */
const MAX_RESOLVED = 10_000;

export class PackService {
  /** The change counter the records below were resolved at. */
  #generation = -1;
  /** version ('' for "the newest") → package id → record, valid until the counter moves. */
  readonly #resolved = new Map<string, Map<string, PackRecord>>();

  /** `package_id@version` of stored records already reported as skipped. */
  readonly #reported = new Set<string>();

  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    private readonly events: PackEvents,
    private readonly limits: { maxUploadBytes: number; maxContentBytes: number; maxCompressionRatio: number },
  ) {}

  /** `signature`: the pack's manifest.json.minisig sent beside it, checked as soon as the manifest arrives. */
  async upload(body: AsyncIterable<Buffer>, actor: string, signature: Buffer | null = null): Promise<UploadResult> {
    const keys = (await this.meta.listKeys()).filter((k) => k.purpose === 'pack');
    const staged = await this.blobs.stage();
    let received = 0;
    try {
      const file = await open(staged.path, 'w');
      const maxUpload = this.limits.maxUploadBytes;
      // The staged copy is written in batches of WRITE_BATCH bytes, one batch in flight while
      // verification goes on with the next chunks, instead of one awaited write per 64 KiB socket
      // chunk before verification may see it. Chunks are kept (not copied) until written, which
      // is safe because a request stream never reuses a chunk it has handed over.
      let batch: Buffer[] = [];
      let batchBytes = 0;
      let writing: Promise<unknown> = Promise.resolve();
      let synced: Promise<void> | null = null;
      // Set once verification has answered: a chunk that still arrives for a refused upload (the
      // answer did not wait for it) is neither counted nor written.
      let stopped = false;
      const flush = async () => {
        await writing; // a failed write throws here, into verification, as an awaited write did
        const buffers = batch;
        batch = [];
        batchBytes = 0;
        writing = file.writev(buffers);
        writing.catch(() => {}); // observed by the next flush
      };
      async function* teeToFile(): AsyncGenerator<Buffer> {
        for await (const chunk of body) {
          if (stopped) return;
          received += chunk.length;
          if (received > maxUpload) throw new IqpError('IQP_E_UPLOAD_TOO_LARGE', `The upload exceeds ${maxUpload} bytes.`, { limit: maxUpload });
          batch.push(chunk);
          batchBytes += chunk.length;
          if (batchBytes >= WRITE_BATCH) await flush();
          yield chunk;
        }
        if (batchBytes > 0) await flush();
        await writing;
        // All bytes are written (without a signature sent beside the upload, verification reads
        // them back from the staged file once the pack's own has passed): flush them to disk while verification finishes on its thread;
        // commit's own fsync then finds nothing left to write.
        synced = file.sync();
        synced.catch(() => {}); // awaited below
      }
      let report;
      try {
        if (keys.length === 0) throw new IqpError('IQP_E_NO_PUBLISHER_KEYS');
        report = await verifyOnThread(teeToFile(), {
          publicKeys: keys.map((k) => k.public_key),
          limits: { ...DEFAULT_LIMITS, maxContentBytes: this.limits.maxContentBytes },
          maxCompressionRatio: this.limits.maxCompressionRatio,
          stagedPath: staged.path,
          tmpDir: (this.blobs as { tmpDir?: string }).tmpDir ?? tmpdir(),
          signature,
        });
      } finally {
        stopped = true;
        // Never close under a write or an fsync still in flight (verification may have failed first).
        await writing.catch(() => {});
        await (synced as Promise<void> | null)?.catch(() => {});
        await file.close();
      }
      const m = report.manifest;
      if (RESERVED_IDS.has(m.package_id)) {
        throw new IqpError('IQP_E_INVALID_ID', `The registry reserves the id ${m.package_id} for its own paths (/v1/packs/${m.package_id}); rename the pack.`);
      }
      const record: PackRecord = {
        package_id: m.package_id,
        version: m.version,
        package_type: m.package_type,
        language_code: m.language_code,
        min_app_version: m.min_app_version,
        manifest: m,
        manifest_json: report.manifestBytes.toString('utf8'),
        signature: report.signature!,
        signer_key_id: report.signerKeyId!,
        size_bytes: report.archive.size_bytes,
        sha256: report.archive.sha256,
        published_at: this.clock.now(),
        deprecated_message: null,
        deprecated_at: null,
      };
      const existing = await this.meta.getPack(m.package_id, m.version);
      if (existing) return this.#repeat(existing, record, staged);
      await synced; // settled in the finally above; a failed fsync fails the commit, as commit's own would
      await staged.commit(record.sha256);
      const outcome = await this.meta.insertPack(record, {
        at: record.published_at,
        actor,
        action: 'pack.publish',
        target: `${m.package_id}@${m.version}`,
        details: { after: { sha256: record.sha256, size_bytes: record.size_bytes, signer_key_id: record.signer_key_id } },
      });
      if (outcome !== 'created') {
        // Lost a race with a concurrent upload of the same version.
        const winner = (await this.meta.getPack(m.package_id, m.version))!;
        if (winner.sha256 !== record.sha256) await this.#dropIfUnreferenced(record.sha256);
        return this.#repeat(winner, record, staged);
      }
      this.events.uploaded('created', received);
      return { status: 'created', pack: record };
    } catch (err) {
      this.events.uploaded('rejected', received);
      throw err;
    } finally {
      await staged.abort();
    }
  }

  async #repeat(existing: PackRecord, incoming: PackRecord, staged: { abort(): Promise<void> }): Promise<UploadResult> {
    await staged.abort();
    if (existing.sha256 !== incoming.sha256) {
      throw new IqpError(
        'IQP_E_VERSION_EXISTS',
        `${existing.package_id}@${existing.version} is already published with sha256 ${existing.sha256}; this upload is ${incoming.sha256}.`,
        { package_id: existing.package_id, version: existing.version, sha256: existing.sha256 },
      );
    }
    this.events.uploaded('identical', incoming.size_bytes);
    return { status: 'identical', pack: existing };
  }

  async #dropIfUnreferenced(sha256: string): Promise<void> {
    const refs = await this.meta.listBlobRefs();
    if (!refs.includes(sha256)) await this.blobs.delete(sha256);
  }

  /** The newest published, non-deprecated version of each pack this app version can use. */
  async available(filter: { type?: string; lang?: string; appVersion: string | null; includePrerelease?: boolean }): Promise<PackRecord[]> {
    const active = await this.meta.listActive({ ...(filter.type ? { type: filter.type } : {}), ...(filter.lang ? { lang: filter.lang } : {}) });
    const best = new Map<string, PackRecord>();
    for (const p of this.#comparable(active)) {
      if (!filter.includePrerelease && semver.prerelease(p.version)) continue;
      if (filter.appVersion !== null && semver.gt(p.min_app_version, filter.appVersion)) continue;
      const current = best.get(p.package_id);
      if (!current || semver.gt(p.version, current.version)) best.set(p.package_id, p);
    }
    return [...best.values()].sort((a, b) => (a.package_id < b.package_id ? -1 : 1));
  }

  async versions(packageId: string): Promise<PackRecord[]> {
    const all = await this.meta.listVersions(packageId);
    if (all.length === 0) throw new IqpError('IQP_E_NOT_FOUND', `No pack named ${packageId}.`, { package_id: packageId });
    return all.sort(bySemverDesc);
  }

  async get(packageId: string, version: string): Promise<PackRecord> {
    const pack = await this.meta.getPack(packageId, version);
    if (!pack) throw new IqpError('IQP_E_NOT_FOUND', `No pack ${packageId}@${version}.`, { package_id: packageId, version });
    return pack;
  }

  /** A specific version, or the newest published non-deprecated one. */
  async resolve(packageId: string, version: string | null): Promise<PackRecord> {
    const cached = this.peekResolved(packageId, version);
    if (cached) return cached;
    const generation = this.#current();
    const pack = await this.#resolveUncached(packageId, version);
    // A change while the database was read may have made the answer stale: keep it only if none happened.
    if (generation === this.#current()) {
      const key = version ?? '';
      let byId = this.#resolved.get(key);
      if (!byId) this.#resolved.set(key, (byId = new Map()));
      if (byId.size >= MAX_RESOLVED) byId.clear();
      byId.set(packageId, pack);
    }
    return pack;
  }

  /** What resolve() would answer, if it answered it since the last change (synchronous; reads only the change counter). */
  peekResolved(packageId: string, version: string | null): PackRecord | undefined {
    this.#current();
    return this.#resolved.get(version ?? '')?.get(packageId);
  }

  /** The store's change counter now; records resolved at an older one are forgotten first. */
  #current(): number {
    const generation = this.meta.generation();
    if (generation !== this.#generation) {
      this.#generation = generation;
      this.#resolved.clear();
    }
    return generation;
  }

  async #resolveUncached(packageId: string, version: string | null): Promise<PackRecord> {
    if (version !== null) return this.get(packageId, version);
    const candidates = this.#comparable(await this.versions(packageId)).filter((p) => p.deprecated_at === null && !semver.prerelease(p.version));
    const newest = candidates[0];
    if (!newest) throw new IqpError('IQP_E_NOT_FOUND', `${packageId} has no published, non-deprecated version.`, { package_id: packageId });
    return newest;
  }

  /**
   * The records whose version and min_app_version the semver library can compare. Rows stored by an
   * older registry (which accepted 99999999999999999999.0.0) are left out of what apps are offered,
   * and reported, rather than failing every listing; an operator deprecates them (docs/runbook.md).
   */
  #comparable(records: readonly PackRecord[]): PackRecord[] {
    return records.filter((p) => {
      const bad = !isSemver(p.version) ? 'version' : !isSemver(p.min_app_version) ? 'min_app_version' : null;
      if (bad === null) return true;
      const key = `${p.package_id}@${p.version}`;
      if (!this.#reported.has(key) && this.#reported.size < MAX_RESOLVED) {
        this.#reported.add(key);
        this.events.skipped?.(p, bad);
      }
      return false;
    });
  }

  /** Whether id@version is stored, whatever its version looks like (to deprecate rows an older registry accepted). */
  async isStored(packageId: string, version: string): Promise<boolean> {
    return (await this.meta.getPack(packageId, version)) !== null;
  }

  async deprecate(packageId: string, version: string, message: string, actor: string): Promise<PackRecord> {
    await this.get(packageId, version);
    const [updated] = await this.meta.setDeprecation(packageId, [version], message === '' ? null : message, this.clock.now(), actor);
    return updated!;
  }
}
