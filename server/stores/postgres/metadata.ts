/**
 * The metadata store on PostgreSQL, for several registry servers over one database. The same
 * contract as the SQLite store (test/server/store-conformance.ts): the same answers, orders,
 * cursors and errors. Writes the change counter counts go through PgDatabase.write (why there);
 * the others are single statements, each atomic on its own.
 */
import { decodeCursor, pageOf } from '../cursor.js';
import { type AuditRow, type PackRow, TOKEN_ACTOR, toAudit, toPack } from '../rows.js';
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
import { PgDatabase, type PostgresOptions } from './db.js';
import { applyPgMigrations } from './schema.js';
import { insertAudit, Params, type Queryable, where } from './sql.js';

const TOKEN_COLUMNS = 'id, name, role, created_at, last_used_at, revoked_at';

async function storedSha256(c: Queryable, packageId: string, version: string): Promise<string | null> {
  const { rows } = await c.query<{ sha256: string }>('SELECT sha256 FROM packs WHERE package_id = $1 AND version = $2', [packageId, version]);
  return rows[0]?.sha256 ?? null;
}

export class PostgresMetadataStore implements MetadataStore {
  /** The pool and change feed, shared with a PostgresReleaseStore; closed with this store. */
  readonly db: PgDatabase;

  constructor(options: PostgresOptions) {
    this.db = new PgDatabase(options);
  }

  /** Also starts following the change counter: generation() is current once this resolves. */
  async migrate(): Promise<number[]> {
    const applied = await applyPgMigrations(this.db.pool);
    await this.db.changes.start();
    return applied;
  }

  async health(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  generation(): number {
    return this.db.changes.generation();
  }

  async insertPack(pack: PackRecord, audit: NewAuditEntry): Promise<InsertPackResult> {
    return this.db.write(async (c): Promise<InsertPackResult> => {
      // Under the counter's lock no other store writer runs, so what this reads stays true until commit.
      const existing = await storedSha256(c, pack.package_id, pack.version);
      if (existing !== null) return existing === pack.sha256 ? 'identical' : 'conflict';
      const inserted = await c.query(
        `INSERT INTO packs (package_id, version, package_type, language_code, min_app_version, manifest_json, signature, signer_key_id,
           size_bytes, sha256, published_at, deprecated_message, deprecated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (package_id, version) DO NOTHING`,
        [
          pack.package_id,
          pack.version,
          pack.package_type,
          pack.language_code,
          pack.min_app_version,
          pack.manifest_json,
          pack.signature,
          pack.signer_key_id,
          pack.size_bytes,
          pack.sha256,
          pack.published_at,
          pack.deprecated_message,
          pack.deprecated_at,
        ],
      );
      // The primary key settles a writer that bypassed the lock (psql, a future code path): its
      // row committed first, so this insert is 'identical' or 'conflict', never an error.
      if (inserted.rowCount === 0) return (await storedSha256(c, pack.package_id, pack.version)) === pack.sha256 ? 'identical' : 'conflict';
      await insertAudit(c, audit);
      return 'created';
    });
  }

  async getPack(packageId: string, version: string): Promise<PackRecord | null> {
    const [row] = await this.db.query<PackRow>('SELECT * FROM packs WHERE package_id = $1 AND version = $2', [packageId, version]);
    return row ? toPack(row) : null;
  }

  async listVersions(packageId: string): Promise<PackRecord[]> {
    return (await this.db.query<PackRow>('SELECT * FROM packs WHERE package_id = $1 ORDER BY published_at, version', [packageId])).map(toPack);
  }

  async listActive(filter: { type?: string; lang?: string }): Promise<PackRecord[]> {
    const p = new Params();
    const conditions = ['deprecated_at IS NULL'];
    if (filter.type !== undefined) conditions.push(`package_type = ${p.add(filter.type)}`);
    if (filter.lang !== undefined) conditions.push(`language_code = ${p.add(filter.lang)}`);
    // SQLite walks its primary key for ORDER BY package_id, so versions of one pack come in
    // version order; said here explicitly.
    return (await this.db.query<PackRow>(`SELECT * FROM packs ${where(conditions)} ORDER BY package_id, version`, p.values)).map(toPack);
  }

  async listPackIds(limit: number, cursor: string | null): Promise<Page<{ package_id: string; versions: number; latest_published_at: string }>> {
    const after = cursor === null ? null : decodeCursor(cursor, 'string');
    const p = new Params();
    const conditions = after === null ? [] : [`package_id > ${p.add(after)}`];
    const rows = await this.db.query<{ package_id: string; versions: number; latest_published_at: string }>(
      `SELECT package_id, count(*) AS versions, max(published_at) AS latest_published_at FROM packs
       ${where(conditions)} GROUP BY package_id ORDER BY package_id LIMIT ${p.add(limit + 1)}`,
      p.values,
    );
    return pageOf(rows, limit, (r) => r, (r) => r.package_id);
  }

  async setDeprecation(packageId: string, versions: readonly string[], message: string | null, at: string, actor: string): Promise<PackRecord[]> {
    return this.db.write(async (c) => {
      const updated: PackRecord[] = [];
      for (const version of versions) {
        const { rows: before } = await c.query<PackRow>('SELECT * FROM packs WHERE package_id = $1 AND version = $2', [packageId, version]);
        if (!before[0]) continue;
        const { rows: after } = await c.query<PackRow>('UPDATE packs SET deprecated_message = $1, deprecated_at = $2 WHERE package_id = $3 AND version = $4 RETURNING *', [
          message,
          message === null ? null : at,
          packageId,
          version,
        ]);
        await insertAudit(c, {
          at,
          actor,
          action: message === null ? 'pack.undeprecate' : 'pack.deprecate',
          target: `${packageId}@${version}`,
          details: { before: { deprecated_message: before[0].deprecated_message }, after: { deprecated_message: message } },
        });
        updated.push(toPack(after[0]!));
      }
      return updated;
    });
  }

  async countPacks(): Promise<number> {
    return (await this.db.query<{ n: number }>('SELECT count(*) AS n FROM packs'))[0]!.n;
  }

  async listBlobRefs(): Promise<string[]> {
    return (await this.db.query<{ sha256: string }>('SELECT DISTINCT sha256 FROM packs ORDER BY sha256')).map((r) => r.sha256);
  }

  async addKey(key: PublisherKey, audit: NewAuditEntry): Promise<'created' | 'exists'> {
    return this.db.write(async (c): Promise<'created' | 'exists'> => {
      if ((await c.query('SELECT 1 FROM publisher_keys WHERE key_id = $1', [key.key_id])).rowCount) return 'exists';
      await c.query('INSERT INTO publisher_keys (key_id, public_key, name, added_at, purpose) VALUES ($1, $2, $3, $4, $5)', [
        key.key_id,
        key.public_key,
        key.name,
        key.added_at,
        key.purpose,
      ]);
      await insertAudit(c, audit);
      return 'created';
    });
  }

  async removeKey(keyId: string, audit: NewAuditEntry): Promise<boolean> {
    return this.db.write(async (c) => {
      const changed = ((await c.query('DELETE FROM publisher_keys WHERE key_id = $1', [keyId])).rowCount ?? 0) > 0;
      if (changed) await insertAudit(c, audit);
      return changed;
    });
  }

  async listKeys(): Promise<PublisherKey[]> {
    return this.db.query<PublisherKey>('SELECT key_id, public_key, name, added_at, purpose FROM publisher_keys ORDER BY added_at, key_id');
  }

  async createToken(token: TokenRecord, secretHash: string): Promise<void> {
    await this.db.query('INSERT INTO tokens (id, name, role, secret_hash, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL, NULL)', [
      token.id,
      token.name,
      token.role,
      secretHash,
      token.created_at,
    ]);
  }

  async findToken(secretHash: string, at: string): Promise<TokenRecord | null> {
    // One statement: the token as found (last_used_at before this use, as in SQLite) and the
    // record of this use, only when the minute changed: every use would write on every request.
    const [row] = await this.db.query<TokenRecord>(
      `WITH found AS (SELECT ${TOKEN_COLUMNS} FROM tokens WHERE secret_hash = $1 AND revoked_at IS NULL),
       used AS (UPDATE tokens SET last_used_at = $2 FROM found
                WHERE tokens.id = found.id AND (found.last_used_at IS NULL OR left(found.last_used_at, 16) <> left($2, 16)))
       SELECT ${TOKEN_COLUMNS} FROM found`,
      [secretHash, at],
    );
    return row ?? null;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return this.db.query<TokenRecord>(`SELECT ${TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id`);
  }

  async revokeToken(id: string, at: string): Promise<boolean> {
    return ((await this.db.pool.query('UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id])).rowCount ?? 0) > 0;
  }

  async appendAudit(entry: NewAuditEntry): Promise<void> {
    await insertAudit(this.db.pool, entry);
  }

  async listAudit(limit: number, cursor: string | null, filter: AuditFilter = {}): Promise<Page<AuditEntry>> {
    const before = cursor === null ? null : decodeCursor(cursor, 'number');
    const p = new Params();
    const conditions: string[] = [];
    if (before !== null) conditions.push(`id < ${p.add(before)}`);
    if (filter.actor !== undefined) {
      // `token:<id>` also matches `token:<id>(<name>)`: a range on the actor index, [`…(`, `…)`).
      const range = TOKEN_ACTOR.test(filter.actor) ? ` OR (actor >= ${p.add(`${filter.actor}(`)} AND actor < ${p.add(`${filter.actor})`)})` : '';
      conditions.push(`(actor = ${p.add(filter.actor)}${range})`);
    }
    if (filter.target !== undefined) conditions.push(`target = ${p.add(filter.target)}`);
    if (filter.action !== undefined) {
      // '.' + 1 is '/': every action that starts with the family's `name.`.
      const family = filter.action.endsWith('.*') ? filter.action.slice(0, -1) : null;
      const range = family === null ? '' : ` OR (action >= ${p.add(family)} AND action < ${p.add(`${family.slice(0, -1)}/`)})`;
      conditions.push(`(action = ${p.add(filter.action)}${range})`);
    }
    if (filter.since !== undefined) conditions.push(`at >= ${p.add(filter.since)}`);
    const rows = await this.db.query<AuditRow>(`SELECT * FROM audit_log ${where(conditions)} ORDER BY id DESC LIMIT ${p.add(limit + 1)}`, p.values);
    return pageOf(rows, limit, toAudit, (e) => e.id);
  }
}
