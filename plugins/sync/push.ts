/**
 * A push: a device's queued mutations applied in order, in one transaction, each answered. The
 * user comes from the access token only. (user, device, mutation_id) is unique and its answer is
 * stored, so a replayed push answers as it did the first time and writes nothing.
 */
import { createHash } from 'node:crypto';
import type { PluginDatabase } from '../../server/plugins/api.js';
import { type Core, newId } from './core.js';
import type { Entity } from './entities.js';
import { applyPatch, type Doc, mergePatch, mergeUpsert } from './merge.js';
import type { MutationT, PushBodyT, PushResultT } from './routes/schemas.js';
import type { EntityRow } from './store.js';
import { deletedSummary, fieldSummary, restoredSummary } from './summary.js';

export interface PushCounts {
  applied: number;
  merged: number;
  conflict: number;
  duplicate: number;
  rejected: number;
}

/** What one mutation was, for telling a replay from a reused id (client_ts is left out: it does not change the mutation). */
export function digest(m: MutationT): string {
  return createHash('sha256')
    .update(JSON.stringify([m.entity, m.entity_id, m.op, m.payload ?? null, m.base_version ?? 0]))
    .digest('base64url');
}

function parse(text: string | null): Doc {
  return text === null ? {} : (JSON.parse(text) as Doc);
}

/** One push's work inside its transaction. */
class Batch {
  private head: number;
  readonly counts: PushCounts = { applied: 0, merged: 0, conflict: 0, duplicate: 0, rejected: 0 };
  private readonly names = new Map<string, string>();

  constructor(
    private readonly core: Core,
    private readonly tx: PluginDatabase,
    private readonly userId: string,
    private readonly deviceId: string,
    private readonly deviceName: string | null,
    private readonly schemaVersion: number,
    head: number,
  ) {
    this.head = head;
  }

  get lastSeq(): number {
    return this.head;
  }

  private next(): number {
    return ++this.head;
  }

  private rejected(m: MutationT, code: Parameters<Core['ctx']['error']>[0], message: string, extra: { field?: string; version?: number } = {}): PushResultT {
    return {
      mutation_id: m.mutation_id,
      status: 'rejected',
      entity: m.entity,
      entity_id: m.entity_id,
      ...(extra.version !== undefined ? { version: extra.version } : {}),
      error: { code, message, ...(extra.field ? { field: extra.field } : {}) },
    };
  }

  /** The mutation's answer; a replay's is the stored one (counted as a duplicate). */
  async apply(m: MutationT): Promise<PushResultT> {
    const d = digest(m);
    const prior = await this.core.store.mutation(this.userId, this.deviceId, m.mutation_id, this.tx);
    if (prior) {
      if (prior.digest !== d) return this.count(this.rejected(m, 'IQP_E_SYNC_MUTATION_REUSED', `mutation_id ${m.mutation_id} was already used by this device for a different mutation.`, { field: 'mutation_id' }));
      this.counts.duplicate++;
      return JSON.parse(prior.result) as PushResultT;
    }
    const result = this.count(await this.decide(m));
    await this.core.store.saveMutation(this.userId, this.deviceId, m.mutation_id, d, JSON.stringify(result), this.core.ctx.clock.nowMs(), this.tx);
    return result;
  }

  private async decide(m: MutationT): Promise<PushResultT> {
    const entity = this.core.entities.get(m.entity);
    if (!entity) return this.rejected(m, 'IQP_E_SYNC_ENTITY_UNKNOWN', `"${m.entity}" is not an entity this registry syncs.`, { field: 'entity' });
    let payload: Doc | null = null;
    if (m.op !== 'delete') {
      if (!m.payload) return this.rejected(m, 'IQP_E_SYNC_PAYLOAD_INVALID', `An ${m.op} needs a payload object.`, { field: 'payload' });
      payload = this.schemaVersion < this.core.config.schema_versions.max ? entity.upgrade(m.payload, this.schemaVersion) : m.payload;
      const bytes = Buffer.byteLength(JSON.stringify(payload));
      if (bytes > entity.maxPayloadBytes) return this.rejected(m, 'IQP_E_SYNC_PAYLOAD_TOO_LARGE', `The payload is ${bytes} bytes; ${m.entity} takes at most ${entity.maxPayloadBytes}.`, { field: 'payload' });
    }
    const current = await this.core.store.row(this.userId, m.entity, m.entity_id, this.tx);
    const baseVersion = m.base_version ?? 0;
    if (current && baseVersion > current.version) {
      return this.rejected(m, 'IQP_E_SYNC_BASE_VERSION', `base_version ${baseVersion} is newer than ${m.entity} ${m.entity_id}'s version ${current.version} on the registry.`, { field: 'base_version', version: current.version });
    }
    if (m.op === 'delete') return this.remove(m, current, baseVersion);
    return this.write(m, entity, payload!, current, baseVersion);
  }

  /**
   * The version the device's change was made on, counting versions it wrote itself as seen (two
   * edits made offline both carry the version seen before them); null when that version is gone
   * (compacted) and the base is unknown.
   */
  private async base(current: EntityRow, baseVersion: number): Promise<{ version: number; doc: Doc | null; deleted: boolean }> {
    const since = await this.core.store.versions(this.userId, current.entity, current.entity_id, baseVersion, current.version, this.tx);
    let effective = baseVersion;
    for (const v of since) {
      if (v.device_id !== this.deviceId) break;
      effective = v.version;
    }
    if (effective >= current.version) return { version: current.version, doc: current.deleted ? null : parse(current.payload), deleted: current.deleted === 1 };
    if (effective === 0) return { version: 0, doc: null, deleted: false };
    const row = since.find((v) => v.version === effective) ?? (await this.core.store.version(this.userId, current.entity, current.entity_id, effective, this.tx));
    return { version: effective, doc: row && !row.deleted ? parse(row.payload) : null, deleted: row?.deleted === 1 };
  }

  private async store(m: MutationT, version: number, doc: Doc | null): Promise<number> {
    const seq = this.next();
    await this.core.store.write(
      this.userId,
      { entity: m.entity, entity_id: m.entity_id, version, seq, deleted: doc ? 0 : 1, payload: doc ? JSON.stringify(doc) : null, device_id: this.deviceId },
      this.core.ctx.clock.nowMs(),
      this.tx,
    );
    return seq;
  }

  private ok(m: MutationT, status: 'applied' | 'merged', version: number, seq: number): PushResultT {
    return { mutation_id: m.mutation_id, status, entity: m.entity, entity_id: m.entity_id, version, seq };
  }

  private async names2(other: string | null): Promise<{ me: string; other: string }> {
    if (this.deviceName) this.names.set(this.deviceId, this.deviceName);
    const wanted = [this.deviceId, ...(other ? [other] : [])].filter((id) => !this.names.has(id));
    for (const r of await this.core.store.deviceNames(this.userId, wanted, this.tx)) this.names.set(r.device_id, r.name ?? r.device_id);
    return { me: this.names.get(this.deviceId) ?? this.deviceId, other: other ? (this.names.get(other) ?? other) : 'another device' };
  }

  private async conflict(
    m: MutationT,
    entity: Entity | null,
    current: EntityRow,
    fields: readonly string[],
    base: Doc | null,
    winner: Doc | null,
    loser: Doc | null,
    summary: (s: { label: string; entityId: string; loserDevice: string; winnerDevice: string }) => string,
    version: number,
    rowSeq: number,
  ): Promise<PushResultT> {
    const names = await this.names2(current.device_id);
    const id = `c_${newId(12)}`;
    await this.core.store.insertConflict(
      {
        id,
        user_id: this.userId,
        seq: this.next(),
        entity: m.entity,
        entity_id: m.entity_id,
        fields: JSON.stringify(fields),
        base: base ? JSON.stringify(base) : null,
        winner: winner ? JSON.stringify(winner) : null,
        loser: loser ? JSON.stringify(loser) : null,
        winner_device: this.deviceId,
        loser_device: current.device_id,
        summary: summary({ label: entity?.label ?? m.entity, entityId: m.entity_id, loserDevice: names.other, winnerDevice: names.me }),
        status: 'open',
        resolution: null,
        created_at: this.core.ctx.clock.now(),
        resolved_at: null,
      },
      this.tx,
    );
    return { mutation_id: m.mutation_id, status: 'conflict', entity: m.entity, entity_id: m.entity_id, version, seq: rowSeq, conflict_id: id };
  }

  private async remove(m: MutationT, current: EntityRow | undefined, baseVersion: number): Promise<PushResultT> {
    if (!current) return this.ok(m, 'applied', 1, await this.store(m, 1, null));
    if (current.deleted) return this.ok(m, 'applied', current.version, current.seq);
    const base = baseVersion === 0 ? { version: current.version, doc: null } : await this.base(current, baseVersion);
    const version = current.version + 1;
    const seq = await this.store(m, version, null);
    if (base.version >= current.version) return this.ok(m, 'applied', version, seq);
    // Edits this device had not seen are deleted with it: the conflict keeps them.
    return this.conflict(m, this.core.entities.get(m.entity), current, ['(deleted)'], base.doc, null, parse(current.payload), deletedSummary, version, seq);
  }

  private async write(m: MutationT, entity: Entity, payload: Doc, current: EntityRow | undefined, baseVersion: number): Promise<PushResultT> {
    const invalid = (doc: Doc) => {
      const bad = entity.check(doc);
      return bad ? this.rejected(m, 'IQP_E_SYNC_PAYLOAD_INVALID', bad.message, { field: bad.field, ...(current ? { version: current.version } : {}) }) : null;
    };
    if (!current) {
      const bad = invalid(payload);
      if (bad) return bad;
      return this.ok(m, 'applied', 1, await this.store(m, 1, payload));
    }
    const version = current.version + 1;
    if (current.deleted) {
      const base = baseVersion === 0 ? null : await this.base(current, baseVersion);
      // The device saw the delete (or never saw the entity): a new life for the id.
      if (!base || base.version >= current.version) {
        const bad = invalid(payload);
        if (bad) return bad;
        return this.ok(m, 'applied', version, await this.store(m, version, payload));
      }
      const doc = m.op === 'patch' ? applyPatch(base.doc ?? {}, payload) : payload;
      const bad = invalid(doc);
      if (bad) return bad;
      const seq = await this.store(m, version, doc);
      return this.conflict(m, entity, current, ['(deleted)'], base.doc, doc, null, restoredSummary, version, seq);
    }
    // A patch made without a base sets its fields on whatever is there; so does one on the latest version.
    const base = m.op === 'patch' && baseVersion === 0 ? null : await this.base(current, baseVersion);
    if (!base || base.version >= current.version) {
      const doc = m.op === 'patch' ? applyPatch(parse(current.payload), payload) : payload;
      const bad = invalid(doc);
      if (bad) return bad;
      return this.ok(m, 'applied', version, await this.store(m, version, doc));
    }
    const theirs = parse(current.payload);
    const merged = m.op === 'patch' ? mergePatch(base.doc ?? {}, theirs, payload) : mergeUpsert(base.doc ?? {}, theirs, payload);
    const bad = invalid(merged.doc);
    if (bad) return bad;
    const seq = await this.store(m, version, merged.doc);
    if (merged.conflicts.length === 0) return this.ok(m, merged.kept ? 'merged' : 'applied', version, seq);
    return this.conflict(
      m,
      entity,
      current,
      merged.conflicts,
      base.doc,
      merged.doc,
      merged.loser,
      (s) => fieldSummary(s, merged.conflicts, merged.loser, merged.doc),
      version,
      seq,
    );
  }

  /** Counts an answer by its status (for the audit log and metrics). */
  count(r: PushResultT): PushResultT {
    this.counts[r.status as keyof PushCounts]++;
    return r;
  }
}

export async function push(core: Core, userId: string, body: PushBodyT): Promise<{ results: PushResultT[]; head: number; counts: PushCounts }> {
  const { config } = core;
  if (body.schema_version < config.schema_versions.min || body.schema_version > config.schema_versions.max) {
    throw core.ctx.error('IQP_E_SYNC_SCHEMA_VERSION', `schema_version ${body.schema_version} is outside ${config.schema_versions.min}–${config.schema_versions.max}, the range this registry accepts.`, {
      details: { field: 'body.schema_version', min: config.schema_versions.min, max: config.schema_versions.max },
    });
  }
  if (body.mutations.length > config.max_push_mutations) {
    throw core.ctx.error('IQP_E_SYNC_PUSH_TOO_LARGE', `The push has ${body.mutations.length} mutations; send at most ${config.max_push_mutations} at once.`, { details: { field: 'body.mutations', max: config.max_push_mutations } });
  }
  return core.ctx.db.transaction(async (tx) => {
    await core.claimDevice(userId, body.device_id, body.device_name ?? null, tx);
    const user = await core.ensureUser(userId, tx);
    const batch = new Batch(core, tx, userId, body.device_id, body.device_name ?? null, body.schema_version, user.head);
    const results: PushResultT[] = [];
    const first = new Map<string, { r: PushResultT; digest: string }>();
    for (const m of body.mutations) {
      const earlier = first.get(m.mutation_id);
      // The same id twice in one push: applied once; a second copy answers duplicate with the first's version.
      if (earlier && earlier.digest === digest(m)) {
        const { error: _error, conflict_id: _conflict, ...rest } = earlier.r;
        results.push(batch.count({ ...rest, status: 'duplicate' }));
        continue;
      }
      const r = await batch.apply(m);
      if (!earlier) first.set(m.mutation_id, { r, digest: digest(m) });
      results.push(r);
    }
    if (batch.lastSeq !== user.head) await core.store.setHead(userId, batch.lastSeq, tx);
    return { results, head: batch.lastSeq, counts: batch.counts };
  });
}
