/** The embedded metadata store: one SQLite database in WAL mode (better-sqlite3). */
import Database from 'better-sqlite3';
import type {
  AuditEntry,
  AuditFilter,
  InsertPackResult,
  MetadataStore,
  NewAuditEntry,
  PackRecord,
  Page,
  PublisherKey,
  TokenRecord,
} from '../types.js';
import { decodeCursor, pageOf } from '../cursor.js';
import { type AuditRow, type PackRow, TOKEN_ACTOR, toAudit, toPack } from '../rows.js';
import { applyMigrations } from './schema.js';
import { SqliteWrites } from './writes.js';

/** The sha256 of every blob the database refers to, sorted (backups copy them, restores check them, recovery keeps them). */
export function blobRefs(db: Database.Database): string[] {
  return db.prepare('SELECT DISTINCT sha256 FROM packs ORDER BY sha256').pluck().all() as string[];
}

/** One audit row: the core writes it here, plugins through their own connection (server/plugins/audit.ts). */
export const INSERT_AUDIT = 'INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)';

export function auditRow(entry: NewAuditEntry): [string, string, string, string, string | null] {
  return [entry.at, entry.actor, entry.action, entry.target, entry.details === null ? null : JSON.stringify(entry.details)];
}

export class SqliteMetadataStore implements MetadataStore {
  readonly db: Database.Database;
  /** Write transactions and the change counter; the release store on this connection uses it too. */
  readonly writes: SqliteWrites;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // FULL: a publish acknowledged to a client survives power loss, not only a process crash.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.writes = new SqliteWrites(this.db);
  }

  async migrate(): Promise<number[]> {
    return applyMigrations(this.db);
  }

  async health(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  generation(): number {
    return this.writes.generation();
  }

  #audit(entry: NewAuditEntry): void {
    this.db.prepare(INSERT_AUDIT).run(...auditRow(entry));
  }

  async insertPack(pack: PackRecord, audit: NewAuditEntry): Promise<InsertPackResult> {
    return this.writes.run((): InsertPackResult => {
      const existing = this.db.prepare('SELECT sha256 FROM packs WHERE package_id = ? AND version = ?').pluck().get(pack.package_id, pack.version) as
        | string
        | undefined;
      if (existing !== undefined) return existing === pack.sha256 ? 'identical' : 'conflict';
      this.db
        .prepare(
          `INSERT INTO packs (package_id, version, package_type, language_code, min_app_version, manifest_json, signature, signer_key_id,
             size_bytes, sha256, published_at, deprecated_message, deprecated_at)
           VALUES (@package_id, @version, @package_type, @language_code, @min_app_version, @manifest_json, @signature, @signer_key_id,
             @size_bytes, @sha256, @published_at, @deprecated_message, @deprecated_at)`,
        )
        .run({ ...pack, manifest: undefined });
      this.#audit(audit);
      return 'created';
    });
  }

  async getPack(packageId: string, version: string): Promise<PackRecord | null> {
    const row = this.db.prepare('SELECT * FROM packs WHERE package_id = ? AND version = ?').get(packageId, version) as PackRow | undefined;
    return row ? toPack(row) : null;
  }

  async listVersions(packageId: string): Promise<PackRecord[]> {
    return (this.db.prepare('SELECT * FROM packs WHERE package_id = ? ORDER BY published_at, version').all(packageId) as PackRow[]).map(toPack);
  }

  async listActive(filter: { type?: string; lang?: string }): Promise<PackRecord[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM packs WHERE deprecated_at IS NULL
           AND (@type IS NULL OR package_type = @type) AND (@lang IS NULL OR language_code = @lang)
         ORDER BY package_id`,
      )
      .all({ type: filter.type ?? null, lang: filter.lang ?? null }) as PackRow[];
    return rows.map(toPack);
  }

  async listPackIds(limit: number, cursor: string | null): Promise<Page<{ package_id: string; versions: number; latest_published_at: string }>> {
    const after = cursor === null ? null : decodeCursor(cursor, 'string');
    const rows = this.db
      .prepare(
        `SELECT package_id, count(*) AS versions, max(published_at) AS latest_published_at FROM packs
         WHERE (@after IS NULL OR package_id > @after) GROUP BY package_id ORDER BY package_id LIMIT @limit`,
      )
      .all({ after, limit: limit + 1 }) as { package_id: string; versions: number; latest_published_at: string }[];
    return pageOf(rows, limit, (r) => r, (r) => r.package_id);
  }

  async setDeprecation(packageId: string, versions: readonly string[], message: string | null, at: string, actor: string): Promise<PackRecord[]> {
    return this.writes.run(() => {
      const updated: PackRecord[] = [];
      for (const version of versions) {
        const before = this.db.prepare('SELECT * FROM packs WHERE package_id = ? AND version = ?').get(packageId, version) as PackRow | undefined;
        if (!before) continue;
        this.db
          .prepare('UPDATE packs SET deprecated_message = ?, deprecated_at = ? WHERE package_id = ? AND version = ?')
          .run(message, message === null ? null : at, packageId, version);
        this.#audit({
          at,
          actor,
          action: message === null ? 'pack.undeprecate' : 'pack.deprecate',
          target: `${packageId}@${version}`,
          details: { before: { deprecated_message: before.deprecated_message }, after: { deprecated_message: message } },
        });
        updated.push(toPack(this.db.prepare('SELECT * FROM packs WHERE package_id = ? AND version = ?').get(packageId, version) as PackRow));
      }
      return updated;
    });
  }

  async countPacks(): Promise<number> {
    return this.db.prepare('SELECT count(*) FROM packs').pluck().get() as number;
  }

  async listBlobRefs(): Promise<string[]> {
    return blobRefs(this.db);
  }

  async addKey(key: PublisherKey, audit: NewAuditEntry): Promise<'created' | 'exists'> {
    return this.writes.run((): 'created' | 'exists' => {
      const exists = this.db.prepare('SELECT 1 FROM publisher_keys WHERE key_id = ?').get(key.key_id);
      if (exists) return 'exists';
      this.db
        .prepare('INSERT INTO publisher_keys (key_id, public_key, name, added_at, purpose) VALUES (?, ?, ?, ?, ?)')
        .run(key.key_id, key.public_key, key.name, key.added_at, key.purpose);
      this.#audit(audit);
      return 'created';
    });
  }

  async removeKey(keyId: string, audit: NewAuditEntry): Promise<boolean> {
    return this.writes.run(() => {
      const changed = this.db.prepare('DELETE FROM publisher_keys WHERE key_id = ?').run(keyId).changes > 0;
      if (changed) this.#audit(audit);
      return changed;
    });
  }

  async listKeys(): Promise<PublisherKey[]> {
    return this.db.prepare('SELECT key_id, public_key, name, added_at, purpose FROM publisher_keys ORDER BY added_at, key_id').all() as PublisherKey[];
  }

  async createToken(token: TokenRecord, secretHash: string): Promise<void> {
    this.db
      .prepare('INSERT INTO tokens (id, name, role, secret_hash, created_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL, NULL)')
      .run(token.id, token.name, token.role, secretHash, token.created_at);
  }

  async findToken(secretHash: string, at: string): Promise<TokenRecord | null> {
    const row = this.db
      .prepare('SELECT id, name, role, created_at, last_used_at, revoked_at FROM tokens WHERE secret_hash = ? AND revoked_at IS NULL')
      .get(secretHash) as TokenRecord | undefined;
    if (!row) return null;
    // Recording every use would write on every request; minute resolution is enough for operators.
    if (row.last_used_at === null || row.last_used_at.slice(0, 16) !== at.slice(0, 16)) {
      this.db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(at, row.id);
    }
    return row;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return this.db.prepare('SELECT id, name, role, created_at, last_used_at, revoked_at FROM tokens ORDER BY created_at, id').all() as TokenRecord[];
  }

  async revokeToken(id: string, at: string): Promise<boolean> {
    return this.db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id).changes > 0;
  }

  async appendAudit(entry: NewAuditEntry): Promise<void> {
    this.#audit(entry);
  }

  async listAudit(limit: number, cursor: string | null, filter: AuditFilter = {}): Promise<Page<AuditEntry>> {
    const before = cursor === null ? null : decodeCursor(cursor, 'number');
    // `token:<id>` also matches `token:<id>(<name>)`: a range on the actor index, [`…(`, `…)`).
    const tokenOnly = filter.actor !== undefined && TOKEN_ACTOR.test(filter.actor);
    const family = filter.action?.endsWith('.*') ? filter.action.slice(0, -1) : null;
    const rows = this.db
      .prepare(
        `SELECT * FROM audit_log WHERE (@before IS NULL OR id < @before)
           AND (@actor IS NULL OR actor = @actor OR (actor >= @actorFrom AND actor < @actorTo))
           AND (@target IS NULL OR target = @target)
           AND (@action IS NULL OR action = @action OR (action >= @familyFrom AND action < @familyTo))
           AND (@since IS NULL OR at >= @since)
         ORDER BY id DESC LIMIT @limit`,
      )
      .all({
        before,
        actor: filter.actor ?? null,
        actorFrom: tokenOnly ? `${filter.actor}(` : null,
        actorTo: tokenOnly ? `${filter.actor})` : null,
        target: filter.target ?? null,
        action: filter.action ?? null,
        // '.' + 1 is '/': every action that starts with the family's `name.`.
        familyFrom: family,
        familyTo: family === null ? null : `${family.slice(0, -1)}/`,
        since: filter.since ?? null,
        limit: limit + 1,
      }) as AuditRow[];
    return pageOf(rows, limit, toAudit, (e) => e.id);
  }
}
