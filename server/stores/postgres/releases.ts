/**
 * Releases on PostgreSQL, over the metadata store's database (PostgresMetadataStore.db), against
 * the same contract as the SQLite store (test/server/release-store-conformance.ts). Every write
 * runs in PgDatabase.write, under the change counter's row lock: a release's status, its
 * artifacts and its channel's sequence cannot change between being checked and being written,
 * whichever server writes.
 */
import type pg from 'pg';
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
import { auditState, type ProfileRow, toProfile } from '../rows.js';
import type { NewAuditEntry, Page } from '../types.js';
import type { PgDatabase } from './db.js';
import { getRelease, selectReleases } from './release-rows.js';
import { insertAudit, Params, where } from './sql.js';

/** Thrown inside a transaction to undo its first half when the second half is refused. */
class Undo {
  constructor(readonly result: RollbackResult) {}
}

export class PostgresReleaseStore implements ReleaseStore {
  constructor(private readonly db: PgDatabase) {}

  async registryId(): Promise<string> {
    return (await this.db.query<{ registry_id: string }>('SELECT registry_id FROM registry_identity'))[0]!.registry_id;
  }

  /** Applies a change to release `id` and writes its audit entry with the state before and after. */
  async #change(c: pg.PoolClient, id: number, action: string, at: string, actor: string, apply: () => Promise<unknown>): Promise<void> {
    const before = await getRelease(c, id);
    await apply();
    await insertAudit(c, { at, actor, action, target: `release:${id}`, details: { before: auditState(before), after: auditState(await getRelease(c, id)) } });
  }

  async appendAudit(entry: NewAuditEntry): Promise<void> {
    await insertAudit(this.db.pool, entry);
  }

  async createRelease(r: NewRelease): Promise<ReleaseRecord | 'exists'> {
    return this.db.write(async (c): Promise<ReleaseRecord | 'exists'> => {
      if ((await c.query('SELECT 1 FROM dataset_releases WHERE channel = $1 AND name = $2', [r.channel, r.name])).rowCount) return 'exists';
      const { rows } = await c.query<{ id: number }>(
        `INSERT INTO dataset_releases (name, channel, notes, min_app_version, required_roles, profile, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
        [r.name, r.channel, r.notes, r.min_app_version, JSON.stringify(r.required_roles), r.profile, r.created_at, r.created_by],
      );
      const created = (await getRelease(c, rows[0]!.id))!;
      await insertAudit(c, {
        at: r.created_at,
        actor: r.created_by,
        action: 'release.create',
        target: `release:${created.id}`,
        details: { before: null, after: { ...auditState(created), name: r.name, channel: r.channel, min_app_version: r.min_app_version, required_roles: r.required_roles, profile: r.profile } },
      });
      return created;
    });
  }

  async getRelease(id: number): Promise<ReleaseRecord | null> {
    return getRelease(this.db.pool, id);
  }

  async listReleases(limit: number, cursor: string | null, filter: { channel?: string; status?: ReleaseStatus } = {}): Promise<Page<ReleaseRecord>> {
    const before = cursor === null ? null : decodeCursor(cursor, 'number');
    const p = new Params();
    const conditions: string[] = [];
    if (before !== null) conditions.push(`r.id < ${p.add(before)}`);
    if (filter.channel !== undefined) conditions.push(`r.channel = ${p.add(filter.channel)}`);
    if (filter.status !== undefined) conditions.push(`r.status = ${p.add(filter.status)}`);
    const rows = await selectReleases(this.db.pool, `${where(conditions)} ORDER BY r.id DESC LIMIT ${p.add(limit + 1)}`, p.values);
    return pageOf(rows, limit, (r) => r, (r) => r.id);
  }

  async listPublished(channel: string): Promise<ReleaseRecord[]> {
    return selectReleases(this.db.pool, "WHERE r.channel = $1 AND r.status = 'published' ORDER BY r.sequence DESC", [channel]);
  }

  async attachArtifact(releaseId: number, a: ArtifactRecord, actor: string): Promise<AttachResult> {
    return this.db.write(async (c): Promise<AttachResult> => {
      const release = await getRelease(c, releaseId);
      if (!release) return 'no-release';
      if (release.status !== 'draft') return 'not-draft';
      if (!(await c.query('SELECT 1 FROM packs WHERE package_id = $1 AND version = $2', [a.package_id, a.version])).rowCount) return 'no-pack';
      const existing = release.artifacts.find((x) => x.role === a.role && x.package_id === a.package_id);
      if (existing && existing.version === a.version) return 'exists';
      await this.#change(c, releaseId, 'release.attach', a.attached_at, actor, () =>
        // Attaching another version of a pack in the same role replaces it.
        c.query(
          `INSERT INTO dataset_release_artifacts (release_id, role, package_id, version, attached_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (release_id, role, package_id) DO UPDATE SET version = excluded.version, attached_at = excluded.attached_at`,
          [releaseId, a.role, a.package_id, a.version, a.attached_at],
        ),
      );
      return 'attached';
    });
  }

  async detachArtifact(releaseId: number, role: string, packageId: string, at: string, actor: string): Promise<'detached' | 'missing' | 'not-draft'> {
    return this.db.write(async (c): Promise<'detached' | 'missing' | 'not-draft'> => {
      const release = await getRelease(c, releaseId);
      if (!release || !release.artifacts.some((a) => a.role === role && a.package_id === packageId)) return 'missing';
      if (release.status !== 'draft') return 'not-draft';
      await this.#change(c, releaseId, 'release.detach', at, actor, () =>
        c.query('DELETE FROM dataset_release_artifacts WHERE release_id = $1 AND role = $2 AND package_id = $3', [releaseId, role, packageId]),
      );
      return 'detached';
    });
  }

  async channelSequence(channel: string): Promise<number> {
    return (await this.db.query<{ sequence: number }>('SELECT sequence FROM channel_sequences WHERE channel = $1', [channel]))[0]?.sequence ?? 0;
  }

  async #advanceSequence(c: pg.PoolClient, channel: string, sequence: number): Promise<boolean> {
    const { rows } = await c.query<{ sequence: number }>('SELECT sequence FROM channel_sequences WHERE channel = $1', [channel]);
    if (sequence !== (rows[0]?.sequence ?? 0) + 1) return false;
    await c.query('INSERT INTO channel_sequences (channel, sequence) VALUES ($1, $2) ON CONFLICT (channel) DO UPDATE SET sequence = excluded.sequence', [channel, sequence]);
    return true;
  }

  async #storeSigned(c: pg.PoolClient, id: number, s: SignedReleaseManifest): Promise<void> {
    await c.query('UPDATE dataset_releases SET sequence = $1, manifest_json = $2, signature = $3, signer_key_id = $4, expires_at = $5 WHERE id = $6', [
      s.sequence,
      s.manifest_json,
      s.signature,
      s.signer_key_id,
      s.expires_at,
      id,
    ]);
  }

  async publishRelease(id: number, signed: SignedReleaseManifest, key: string, at: string, actor: string): Promise<PublishResult> {
    return this.db.write(async (c): Promise<PublishResult> => {
      const release = await getRelease(c, id);
      if (!release) return 'no-release';
      if (release.status !== 'draft') return 'not-draft';
      if (artifactsKey(release.artifacts) !== key) return 'stale';
      if (!(await this.#advanceSequence(c, release.channel, signed.sequence))) return 'sequence';
      await this.#change(c, id, 'release.publish', at, actor, async () => {
        await this.#storeSigned(c, id, signed);
        await c.query("UPDATE dataset_releases SET status = 'published', published_at = $1, published_by = $2 WHERE id = $3", [at, actor, id]);
      });
      return 'published';
    });
  }

  /** The body of resignRelease, for use inside a transaction. */
  async #resign(c: pg.PoolClient, id: number, signed: SignedReleaseManifest, key: string, at: string, actor: string): Promise<ResignResult> {
    const release = await getRelease(c, id);
    if (!release) return 'no-release';
    if (release.status !== 'published') return 'not-published';
    if (artifactsKey(release.artifacts) !== key) return 'stale';
    if (!(await this.#advanceSequence(c, release.channel, signed.sequence))) return 'sequence';
    await this.#change(c, id, 'release.resign', at, actor, () => this.#storeSigned(c, id, signed));
    return 'resigned';
  }

  /** The body of deprecateRelease, for use inside a transaction. */
  async #deprecate(c: pg.PoolClient, id: number, message: string, at: string, actor: string): Promise<DeprecateResult> {
    const release = await getRelease(c, id);
    if (!release) return 'no-release';
    if (release.status !== 'published') return 'not-published';
    await this.#change(c, id, 'release.deprecate', at, actor, () =>
      c.query("UPDATE dataset_releases SET status = 'deprecated', deprecated_at = $1, deprecated_message = $2 WHERE id = $3", [at, message, id]),
    );
    return 'deprecated';
  }

  async resignRelease(id: number, signed: SignedReleaseManifest, key: string, at: string, actor: string): Promise<ResignResult> {
    return this.db.write((c) => this.#resign(c, id, signed, key, at, actor));
  }

  async deprecateRelease(id: number, message: string, at: string, actor: string): Promise<DeprecateResult> {
    return this.db.write((c) => this.#deprecate(c, id, message, at, actor));
  }

  async rollbackRelease(id: number, message: string, target: number, signed: SignedReleaseManifest, key: string, at: string, actor: string): Promise<RollbackResult> {
    try {
      return await this.db.write(async (c): Promise<RollbackResult> => {
        const deprecated = await this.#deprecate(c, id, message, at, actor);
        if (deprecated !== 'deprecated') return { deprecate: deprecated };
        const resigned = await this.#resign(c, target, signed, key, at, actor);
        if (resigned !== 'resigned') throw new Undo({ resign: resigned });
        return 'rolled-back';
      });
    } catch (err) {
      if (err instanceof Undo) return err.result;
      throw err;
    }
  }

  async upsertProfile(p: ReleaseProfile, actor: string): Promise<void> {
    await this.db.write(async (c) => {
      const { rows } = await c.query<ProfileRow>('SELECT * FROM release_profiles WHERE name = $1', [p.name]);
      const before = rows[0];
      await c.query(
        `INSERT INTO release_profiles (name, roles, description, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET roles = excluded.roles, description = excluded.description, updated_at = excluded.updated_at`,
        [p.name, JSON.stringify(p.roles), p.description, p.updated_at],
      );
      await insertAudit(c, {
        at: p.updated_at,
        actor,
        action: 'release_profile.put',
        target: `release_profile:${p.name}`,
        details: { before: before ? { roles: JSON.parse(before.roles) as unknown, description: before.description } : null, after: { roles: p.roles, description: p.description } },
      });
    });
  }

  async getProfile(name: string): Promise<ReleaseProfile | null> {
    const [row] = await this.db.query<ProfileRow>('SELECT * FROM release_profiles WHERE name = $1', [name]);
    return row ? toProfile(row) : null;
  }

  async listProfiles(): Promise<ReleaseProfile[]> {
    return (await this.db.query<ProfileRow>('SELECT * FROM release_profiles ORDER BY name')).map(toProfile);
  }
}
