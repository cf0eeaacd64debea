/** Releases in the embedded SQLite database (the same file and connection as the metadata store). */
import type Database from 'better-sqlite3';
import { decodeCursor, pageOf } from '../cursor.js';
import {
  type ArtifactRecord,
  artifactsKey,
  type AttachResult,
  type DeprecateResult,
  type NewRelease,
  type PublishResult,
  type ReleaseProfile,
  type ReleaseRecord,
  type ReleaseStatus,
  type ReleaseStore,
  type ResignResult,
  type RollbackResult,
  type SignedReleaseManifest,
} from '../release-types.js';
import { auditState, type ProfileRow, type ReleaseRow, toProfile, toRelease } from '../rows.js';
import type { NewAuditEntry, Page } from '../types.js';
import type { SqliteWrites } from './writes.js';

/** Thrown inside a transaction to undo its first half when the second half is refused. */
class Undo {
  constructor(readonly result: RollbackResult) {}
}

export class SqliteReleaseStore implements ReleaseStore {
  private readonly db: Database.Database;
  readonly #writes: SqliteWrites;

  /** On the metadata store's connection: one file, one writer, one change counter. */
  constructor(meta: { readonly db: Database.Database; readonly writes: SqliteWrites }) {
    this.db = meta.db;
    this.#writes = meta.writes;
  }

  async registryId(): Promise<string> {
    return this.db.prepare('SELECT registry_id FROM registry_identity').pluck().get() as string;
  }

  #artifacts(id: number): ArtifactRecord[] {
    return this.db
      .prepare('SELECT role, package_id, version, attached_at FROM dataset_release_artifacts WHERE release_id = ? ORDER BY role, package_id')
      .all(id) as ArtifactRecord[];
  }

  #toRecord(row: ReleaseRow): ReleaseRecord {
    return toRelease(row, this.#artifacts(row.id));
  }

  #get(id: number): ReleaseRecord | null {
    const row = this.db.prepare('SELECT * FROM dataset_releases WHERE id = ?').get(id) as ReleaseRow | undefined;
    return row ? this.#toRecord(row) : null;
  }

  #audit(entry: NewAuditEntry): void {
    this.db
      .prepare('INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)')
      .run(entry.at, entry.actor, entry.action, entry.target, entry.details === null ? null : JSON.stringify(entry.details));
  }

  #change(id: number, action: string, at: string, actor: string, apply: () => void): void {
    const before = this.#get(id);
    apply();
    this.#audit({ at, actor, action, target: `release:${id}`, details: { before: auditState(before), after: auditState(this.#get(id)) } });
  }

  async appendAudit(entry: NewAuditEntry): Promise<void> {
    this.#audit(entry);
  }

  async createRelease(r: NewRelease): Promise<ReleaseRecord | 'exists'> {
    return this.#writes.run((): ReleaseRecord | 'exists' => {
        if (this.db.prepare('SELECT 1 FROM dataset_releases WHERE channel = ? AND name = ?').get(r.channel, r.name)) return 'exists';
        const { lastInsertRowid } = this.db
          .prepare(
            `INSERT INTO dataset_releases (name, channel, notes, min_app_version, required_roles, profile, created_at, created_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(r.name, r.channel, r.notes, r.min_app_version, JSON.stringify(r.required_roles), r.profile, r.created_at, r.created_by);
        const created = this.#get(Number(lastInsertRowid))!;
        this.#audit({ at: r.created_at, actor: r.created_by, action: 'release.create', target: `release:${created.id}`, details: { before: null, after: { ...auditState(created), name: r.name, channel: r.channel, min_app_version: r.min_app_version, required_roles: r.required_roles, profile: r.profile } } });
        return created;
      });
  }

  async getRelease(id: number): Promise<ReleaseRecord | null> {
    return this.#get(id);
  }

  async listReleases(limit: number, cursor: string | null, filter: { channel?: string; status?: ReleaseStatus } = {}): Promise<Page<ReleaseRecord>> {
    const before = cursor === null ? null : decodeCursor(cursor, 'number');
    const rows = this.db
      .prepare(
        `SELECT * FROM dataset_releases WHERE (@before IS NULL OR id < @before)
           AND (@channel IS NULL OR channel = @channel) AND (@status IS NULL OR status = @status)
         ORDER BY id DESC LIMIT @limit`,
      )
      .all({ before, channel: filter.channel ?? null, status: filter.status ?? null, limit: limit + 1 }) as ReleaseRow[];
    return pageOf(rows, limit, (r) => this.#toRecord(r), (r) => r.id);
  }

  async listPublished(channel: string): Promise<ReleaseRecord[]> {
    const rows = this.db.prepare("SELECT * FROM dataset_releases WHERE channel = ? AND status = 'published' ORDER BY sequence DESC").all(channel) as ReleaseRow[];
    return rows.map((r) => this.#toRecord(r));
  }

  async attachArtifact(releaseId: number, a: ArtifactRecord, actor: string): Promise<AttachResult> {
    return this.#writes.run((): AttachResult => {
        const release = this.#get(releaseId);
        if (!release) return 'no-release';
        if (release.status !== 'draft') return 'not-draft';
        if (!this.db.prepare('SELECT 1 FROM packs WHERE package_id = ? AND version = ?').get(a.package_id, a.version)) return 'no-pack';
        const existing = release.artifacts.find((x) => x.role === a.role && x.package_id === a.package_id);
        if (existing && existing.version === a.version) return 'exists';
        this.#change(releaseId, 'release.attach', a.attached_at, actor, () => {
          // Attaching another version of a pack in the same role replaces it.
          this.db
            .prepare(
              `INSERT INTO dataset_release_artifacts (release_id, role, package_id, version, attached_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (release_id, role, package_id) DO UPDATE SET version = excluded.version, attached_at = excluded.attached_at`,
            )
            .run(releaseId, a.role, a.package_id, a.version, a.attached_at);
        });
        return 'attached';
      });
  }

  async detachArtifact(releaseId: number, role: string, packageId: string, at: string, actor: string): Promise<'detached' | 'missing' | 'not-draft'> {
    return this.#writes.run((): 'detached' | 'missing' | 'not-draft' => {
        const release = this.#get(releaseId);
        if (!release || !release.artifacts.some((a) => a.role === role && a.package_id === packageId)) return 'missing';
        if (release.status !== 'draft') return 'not-draft';
        this.#change(releaseId, 'release.detach', at, actor, () => {
          this.db.prepare('DELETE FROM dataset_release_artifacts WHERE release_id = ? AND role = ? AND package_id = ?').run(releaseId, role, packageId);
        });
        return 'detached';
      });
  }

  async channelSequence(channel: string): Promise<number> {
    return (this.db.prepare('SELECT sequence FROM channel_sequences WHERE channel = ?').pluck().get(channel) as number | undefined) ?? 0;
  }

  #advanceSequence(channel: string, sequence: number): boolean {
    const current = (this.db.prepare('SELECT sequence FROM channel_sequences WHERE channel = ?').pluck().get(channel) as number | undefined) ?? 0;
    if (sequence !== current + 1) return false;
    this.db.prepare('INSERT INTO channel_sequences (channel, sequence) VALUES (?, ?) ON CONFLICT (channel) DO UPDATE SET sequence = excluded.sequence').run(channel, sequence);
    return true;
  }

  #storeSigned(id: number, s: SignedReleaseManifest): void {
    this.db
      .prepare('UPDATE dataset_releases SET sequence = ?, manifest_json = ?, signature = ?, signer_key_id = ?, expires_at = ? WHERE id = ?')
      .run(s.sequence, s.manifest_json, s.signature, s.signer_key_id, s.expires_at, id);
  }

  async publishRelease(id: number, signed: SignedReleaseManifest, key: string, at: string, actor: string): Promise<PublishResult> {
    return this.#writes.run((): PublishResult => {
        const release = this.#get(id);
        if (!release) return 'no-release';
        if (release.status !== 'draft') return 'not-draft';
        if (artifactsKey(release.artifacts) !== key) return 'stale';
        if (!this.#advanceSequence(release.channel, signed.sequence)) return 'sequence';
        this.#change(id, 'release.publish', at, actor, () => {
          this.#storeSigned(id, signed);
          this.db.prepare("UPDATE dataset_releases SET status = 'published', published_at = ?, published_by = ? WHERE id = ?").run(at, actor, id);
        });
        return 'published';
      });
  }

  /** The body of resignRelease, for use inside a transaction. */
  #resign(id: number, signed: SignedReleaseManifest, key: string, at: string, actor: string): ResignResult {
    const release = this.#get(id);
    if (!release) return 'no-release';
    if (release.status !== 'published') return 'not-published';
    if (artifactsKey(release.artifacts) !== key) return 'stale';
    if (!this.#advanceSequence(release.channel, signed.sequence)) return 'sequence';
    this.#change(id, 'release.resign', at, actor, () => this.#storeSigned(id, signed));
    return 'resigned';
  }

  /** The body of deprecateRelease, for use inside a transaction. */
  #deprecate(id: number, message: string, at: string, actor: string): DeprecateResult {
    const release = this.#get(id);
    if (!release) return 'no-release';
    if (release.status !== 'published') return 'not-published';
    this.#change(id, 'release.deprecate', at, actor, () => {
      this.db.prepare("UPDATE dataset_releases SET status = 'deprecated', deprecated_at = ?, deprecated_message = ? WHERE id = ?").run(at, message, id);
    });
    return 'deprecated';
  }

  async resignRelease(id: number, signed: SignedReleaseManifest, key: string, at: string, actor: string): Promise<ResignResult> {
    return this.#writes.run(() => this.#resign(id, signed, key, at, actor));
  }

  async deprecateRelease(id: number, message: string, at: string, actor: string): Promise<DeprecateResult> {
    return this.#writes.run(() => this.#deprecate(id, message, at, actor));
  }

  async rollbackRelease(id: number, message: string, target: number, signed: SignedReleaseManifest, key: string, at: string, actor: string): Promise<RollbackResult> {
    try {
      return this.#writes.run((): RollbackResult => {
          const deprecated = this.#deprecate(id, message, at, actor);
          if (deprecated !== 'deprecated') return { deprecate: deprecated };
          const resigned = this.#resign(target, signed, key, at, actor);
          if (resigned !== 'resigned') throw new Undo({ resign: resigned });
          return 'rolled-back';
        });
    } catch (err) {
      if (err instanceof Undo) return err.result;
      throw err;
    }
  }

  async upsertProfile(p: ReleaseProfile, actor: string): Promise<void> {
    this.#writes.run(() => {
        const before = this.db.prepare('SELECT roles, description FROM release_profiles WHERE name = ?').get(p.name) as { roles: string; description: string } | undefined;
        this.db
          .prepare(
            `INSERT INTO release_profiles (name, roles, description, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET roles = excluded.roles, description = excluded.description, updated_at = excluded.updated_at`,
          )
          .run(p.name, JSON.stringify(p.roles), p.description, p.updated_at);
        this.#audit({
          at: p.updated_at,
          actor,
          action: 'release_profile.put',
          target: `release_profile:${p.name}`,
          details: { before: before ? { roles: JSON.parse(before.roles) as unknown, description: before.description } : null, after: { roles: p.roles, description: p.description } },
        });
      });
  }

  async getProfile(name: string): Promise<ReleaseProfile | null> {
    const row = this.db.prepare('SELECT * FROM release_profiles WHERE name = ?').get(name) as ProfileRow | undefined;
    return row ? toProfile(row) : null;
  }

  async listProfiles(): Promise<ReleaseProfile[]> {
    return (this.db.prepare('SELECT * FROM release_profiles ORDER BY name').all() as ProfileRow[]).map(toProfile);
  }
}
