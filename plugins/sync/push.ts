/**
 * A push: a device's queued mutations applied in order, in one transaction, each answered. The
 * user comes from the access token only. (user, device, mutation_id) is unique and its answer is
 * stored, so a replayed push answers as it did the first time and writes nothing.
 */
import { hash } from 'node:crypto';
import type { PluginDatabase } from '../../server/plugins/api.js';
import { type Core, newId } from './core.js';
import type { Entity } from './entities.js';
import { applyPatch, changedFields, type Doc, mergePatch, mergeUpsert } from './merge.js';
import type { MutationT, PushBodyT, PushResultT } from './routes/schemas.js';
import { type EntityRow, entityKey, type VersionRow } from './store.js';
import { deletedSummary, fieldSummary, restoredSummary } from './summary.js';

export interface PushCounts {
  applied: number;
  merged: number;
  conflict: number;
  duplicate: number;
  rejected: number;
}

/** What one mutation was, for telling a replay from a reused id (client_ts is left out: it does not change the mutation). */
export function digest(m: MutationT, payloadText: string): string {
  return hash('sha256', `${JSON.stringify([m.entity, m.entity_id, m.op, m.base_version ?? 0])}${payloadText}`, 'base64url');
}

/** A mutation with its payload serialized once (for the digest, the size check and the write). */
interface Sent {
  readonly m: MutationT;
  readonly text: string;
  readonly digest: string;
}

export function sent(m: MutationT): Sent {
  const text = m.payload ? JSON.stringify(m.payload) : 'null';
  return { m, text, digest: digest(m, text) };
}

/**
 * An answer as stored for replays. Most are "applied" with a version and a seq: kept as
 * `a<version>.<seq>`, the rest of such an answer being the mutation's own id, entity and
 * entity_id (a replay has the same, or its digest would differ). Any other answer is its JSON, as
 * every answer stored before this form was.
 */
export function storedResult(r: PushResultT): string {
  const plain = r.status === 'applied' && r.error === undefined && r.conflict_id === undefined && r.version !== undefined && r.seq !== undefined;
  return plain ? `a${r.version}.${r.seq}` : JSON.stringify(r);
}

/** The answer storedResult kept for mutation m. */
export function storedAnswer(m: MutationT, stored: string): PushResultT {
  if (stored.startsWith('{')) return JSON.parse(stored) as PushResultT;
  const dot = stored.indexOf('.');
  return { mutation_id: m.mutation_id, status: 'applied', entity: m.entity, entity_id: m.entity_id, version: Number(stored.slice(1, dot)), seq: Number(stored.slice(dot + 1)) };
}

/** Longer histories since a device's base are treated as unknown (every differing field counts as changed by others). */
const MAX_HISTORY = 1000;

interface History {
  readonly base: Doc | null;
  readonly others: ReadonlySet<string>;
  readonly othersWrote: boolean;
}

function parse(text: string | null): Doc {
  return text === null ? {} : (JSON.parse(text) as Doc);
}

/** One push's work inside its transaction. */
class Batch {
  private head: number;
  readonly counts: PushCounts = { applied: 0, merged: 0, conflict: 0, duplicate: 0, rejected: 0 };
  private readonly names = new Map<string, string>();
  /** The batch's entities as they stand (prefetched, then kept current as the batch writes). */
  private rows = new Map<string, EntityRow>();
  /** Stored results of this batch's mutation ids (replays). */
  private prior = new Map<string, { digest: string; result: string }>();
  /** This batch's answers, stored together at its end (nothing in the batch reads them back from the table). */
  private readonly saved: Array<{ mutation_id: string; digest: string; result: string }> = [];
  /**
   * Entity states written by the batch but not yet sent to the database (the newest of each), and
   * the states they replaced: sent together (flush) before anything reads sync_versions and at
   * the end, in a few statements instead of one or two per mutation.
   */
  private readonly unwritten = new Map<string, EntityRow>();
  private readonly replaced: EntityRow[] = [];
  /** The serialized payload of the mutation being decided. */
  private text = 'null';
  /** The payload as written when it is the one sent (not upgraded or merged), to reuse its text. */
  private sent: { doc: Doc; text: string } | null = null;
  /** The last other document serialized (a patched or merged one), with its text. */
  private serialized: { doc: Doc; text: string } | null = null;

  constructor(
    private readonly core: Core,
    private readonly tx: PluginDatabase,
    private readonly userId: string,
    private readonly deviceId: string,
    private readonly deviceName: string | null,
    private readonly schemaVersion: number,
    head: number,
    /** The compaction floor: a new row starts above it (see write). */
    private readonly floor: number,
  ) {
    this.head = head;
  }

  /** Reads what the whole batch needs in a few queries instead of two per mutation. */
  async prefetch(mutations: readonly MutationT[]): Promise<void> {
    const keys = new Map<string, [string, string]>();
    for (const m of mutations) keys.set(entityKey(m.entity, m.entity_id), [m.entity, m.entity_id]);
    this.rows = await this.core.store.rows(this.userId, [...keys.values()], this.tx);
    this.prior = await this.core.store.mutations(this.userId, this.deviceId, [...new Set(mutations.map((m) => m.mutation_id))], this.tx);
  }

  /**
   * The version of an id with no row. It may have had one whose tombstone compaction removed; that
   * tombstone's version was at most its seq, at most the floor, so starting above the floor never
   * goes below a version a device saw.
   */
  private get firstVersion(): number {
    return this.floor + 1;
  }

  private async flush(): Promise<void> {
    if (this.unwritten.size === 0) return;
    await this.core.store.writeMany(this.userId, [...this.unwritten.values()], this.replaced, this.core.ctx.clock.nowMs(), this.tx);
    this.unwritten.clear();
    this.replaced.length = 0;
  }

  /** Writes the batch's entity states and stores its answers, so a replay of any of its mutations answers the same. */
  async finish(): Promise<void> {
    await this.flush();
    await this.core.store.saveMutations(this.userId, this.deviceId, this.saved, this.core.ctx.clock.nowMs(), this.tx);
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

  /**
   * The mutation's answer; a replay's is the stored one (counted as a duplicate). Synchronous when
   * deciding needs no read (a new entity, a replay): a push of a hundred new cards then costs no
   * promise per mutation inside its transaction.
   */
  apply(one: Sent): PushResultT | Promise<PushResultT> {
    const { m, text, digest: d } = one;
    this.text = text;
    const prior = this.prior.get(m.mutation_id);
    if (prior) {
      if (prior.digest !== d) return this.count(this.rejected(m, 'IQP_E_SYNC_MUTATION_REUSED', `mutation_id ${m.mutation_id} was already used by this device for a different mutation.`, { field: 'mutation_id' }));
      this.counts.duplicate++;
      return storedAnswer(m, prior.result);
    }
    const decided = this.decide(m);
    return decided instanceof Promise ? decided.then((r) => this.answered(one, r)) : this.answered(one, decided);
  }

  /** Counts a decided mutation's answer and keeps it for storing (finish) and for a repeat later in the batch. */
  private answered({ m, digest: d }: Sent, decided: PushResultT): PushResultT {
    const result = this.count(decided);
    const saved = { mutation_id: m.mutation_id, digest: d, result: storedResult(result) };
    this.prior.set(m.mutation_id, saved);
    this.saved.push(saved);
    return result;
  }

  private decide(m: MutationT): PushResultT | Promise<PushResultT> {
    const entity = this.core.entities.get(m.entity);
    if (!entity) return this.rejected(m, 'IQP_E_SYNC_ENTITY_UNKNOWN', `"${m.entity}" is not an entity this registry syncs.`, { field: 'entity' });
    let payload: Doc | null = null;
    if (m.op !== 'delete') {
      if (!m.payload) return this.rejected(m, 'IQP_E_SYNC_PAYLOAD_INVALID', `An ${m.op} needs a payload object.`, { field: 'payload' });
      payload = this.schemaVersion < this.core.config.schema_versions.max ? entity.upgrade(m.payload, this.schemaVersion, m.op === 'patch') : m.payload;
      const text = payload === m.payload ? this.text : JSON.stringify(payload);
      this.sent = { doc: payload, text };
      const bytes = Buffer.byteLength(text);
      if (bytes > entity.maxPayloadBytes) return this.rejected(m, 'IQP_E_SYNC_PAYLOAD_TOO_LARGE', `The payload is ${bytes} bytes; ${m.entity} takes at most ${entity.maxPayloadBytes}.`, { field: 'payload' });
    }
    const current = this.rows.get(entityKey(m.entity, m.entity_id));
    const baseVersion = m.base_version ?? 0;
    if (current && baseVersion > current.version) {
      return this.rejected(m, 'IQP_E_SYNC_BASE_VERSION', `base_version ${baseVersion} is newer than ${m.entity} ${m.entity_id}'s version ${current.version} on the registry.`, { field: 'base_version', version: current.version });
    }
    if (m.op === 'delete') return this.remove(m, current, baseVersion);
    return this.write(m, entity, payload!, current, baseVersion);
  }

  /**
   * What happened to the entity since the version the device saw: that version's state (null when
   * it never saw one, or it is compacted away) and the fields other devices changed since. The
   * device's own later writes are not news to it (two edits made offline both carry the version
   * seen before them). When the history has a gap, every field the current state has differently
   * from the base counts as changed by others, so nothing is overwritten without a record.
   */
  private async history(current: EntityRow, baseVersion: number): Promise<History> {
    if (baseVersion >= current.version) return { base: parse(current.payload), others: new Set(), othersWrote: false };
    await this.flush();
    // Superseded versions live in sync_versions; the current one is the row.
    const since: VersionRow[] = [...(await this.core.store.versions(this.userId, current.entity, current.entity_id, baseVersion, current.version - 1, this.tx)), current];
    const baseRow = baseVersion > 0 ? await this.core.store.version(this.userId, current.entity, current.entity_id, baseVersion, this.tx) : undefined;
    const base = baseRow && !baseRow.deleted ? parse(baseRow.payload) : null;
    // With no base (an id the device made, or never saw), the history is what the registry kept of
    // this id: a new id starts above the compaction floor, not at 1, and versions older than the
    // device's first write of it were weighed when that write landed.
    const from = baseVersion > 0 ? baseVersion : since[0]!.version - 1;
    const complete = (baseVersion === 0 || baseRow !== undefined) && since.length === current.version - from && since.length <= MAX_HISTORY;
    if (!complete) return { base, others: changedFields(base ?? {}, current.deleted ? {} : parse(current.payload)), othersWrote: true };
    const others = new Set<string>();
    let othersWrote = false;
    let prev: Doc = base ?? {};
    for (const v of since) {
      const doc = v.deleted ? {} : parse(v.payload);
      if (v.device_id !== this.deviceId) {
        othersWrote = true;
        for (const k of changedFields(prev, doc)) others.add(k);
      }
      prev = doc;
    }
    return { base, others, othersWrote };
  }

  /** A document's stored text: the payload as sent when it is that one, else serialized once (the size check and the write share it). */
  private textOf(doc: Doc): string {
    if (doc === this.sent?.doc) return this.sent.text;
    if (doc !== this.serialized?.doc) this.serialized = { doc, text: JSON.stringify(doc) };
    return this.serialized.text;
  }

  private store(m: MutationT, version: number, doc: Doc | null): number {
    const seq = this.next();
    const key = entityKey(m.entity, m.entity_id);
    const row: EntityRow = { entity: m.entity, entity_id: m.entity_id, version, seq, deleted: doc ? 0 : 1, payload: doc ? this.textOf(doc) : null, device_id: this.deviceId };
    const previous = this.rows.get(key);
    if (previous) this.replaced.push(previous);
    this.unwritten.set(key, row);
    this.rows.set(key, row);
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

  private remove(m: MutationT, current: EntityRow | undefined, baseVersion: number): PushResultT | Promise<PushResultT> {
    if (!current) return this.ok(m, 'applied', this.firstVersion, this.store(m, this.firstVersion, null));
    if (current.deleted) return this.ok(m, 'applied', current.version, current.seq);
    return this.removeSeen(m, current, baseVersion);
  }

  private async removeSeen(m: MutationT, current: EntityRow, baseVersion: number): Promise<PushResultT> {
    const h = await this.history(current, baseVersion);
    const version = current.version + 1;
    const seq = this.store(m, version, null);
    if (!h.othersWrote) return this.ok(m, 'applied', version, seq);
    // Edits this device had not seen are deleted with it: the conflict keeps them.
    return this.conflict(m, this.core.entities.get(m.entity), current, ['(deleted)'], h.base, null, parse(current.payload), deletedSummary, version, seq);
  }

  private write(m: MutationT, entity: Entity, payload: Doc, current: EntityRow | undefined, baseVersion: number): PushResultT | Promise<PushResultT> {
    // A new id: nothing to weigh it against.
    if (!current) return this.invalid(m, entity, payload, current) ?? this.ok(m, 'applied', this.firstVersion, this.store(m, this.firstVersion, payload));
    return this.writeOver(m, entity, payload, current, baseVersion);
  }

  /** Why doc may not be stored (its schema, its stored size), else null. */
  private invalid(m: MutationT, entity: Entity, doc: Doc, current: EntityRow | undefined): PushResultT | null {
    const at = current ? { version: current.version } : {};
    const bad = entity.check(doc);
    if (bad) return this.rejected(m, 'IQP_E_SYNC_PAYLOAD_INVALID', bad.message, { field: bad.field, ...at });
    // What is stored must fit the limit too (an import checks it), not only what was sent: a patch or a merge can grow it.
    const bytes = doc === this.sent?.doc ? 0 : Buffer.byteLength(this.textOf(doc));
    return bytes > entity.maxPayloadBytes
      ? this.rejected(m, 'IQP_E_SYNC_PAYLOAD_TOO_LARGE', `With this change ${m.entity} ${m.entity_id} would be ${bytes} bytes; ${m.entity} takes at most ${entity.maxPayloadBytes}.`, { field: 'payload', ...at })
      : null;
  }

  /** write() of an id the registry has a row for: its history decides between applied, merged and conflict. */
  private async writeOver(m: MutationT, entity: Entity, payload: Doc, current: EntityRow, baseVersion: number): Promise<PushResultT> {
    const invalid = (doc: Doc) => this.invalid(m, entity, doc, current);
    const version = current.version + 1;
    const plain = (doc: Doc) => invalid(doc) ?? this.ok(m, 'applied', version, this.store(m, version, doc));
    const h = await this.history(current, baseVersion);
    if (current.deleted) {
      // The device saw the delete, made it itself, or never saw the entity: a new life for the id.
      if (baseVersion === 0 || !h.othersWrote) return plain(m.op === 'patch' ? applyPatch({}, payload) : payload);
      const doc = m.op === 'patch' ? applyPatch(h.base ?? {}, payload) : payload;
      const bad = invalid(doc);
      if (bad) return bad;
      const seq = this.store(m, version, doc);
      return this.conflict(m, entity, current, ['(deleted)'], h.base, doc, null, restoredSummary, version, seq);
    }
    // Nobody else wrote since the device's base: an upsert replaces, a patch sets its fields.
    if (!h.othersWrote) return plain(m.op === 'patch' ? applyPatch(parse(current.payload), payload) : payload);
    const theirs = parse(current.payload);
    const merged = m.op === 'patch' ? mergePatch(h.base ?? {}, theirs, payload, h.others) : mergeUpsert(h.base ?? {}, theirs, payload, h.others);
    const bad = invalid(merged.doc);
    if (bad) return bad;
    const seq = this.store(m, version, merged.doc);
    if (merged.conflicts.length === 0) return this.ok(m, merged.kept ? 'merged' : 'applied', version, seq);
    return this.conflict(m, entity, current, merged.conflicts, h.base, merged.doc, merged.loser, (s) => fieldSummary(s, merged.conflicts, merged.loser, merged.doc), version, seq);
  }

  count(r: PushResultT): PushResultT {
    this.counts[r.status as keyof PushCounts]++;
    return r;
  }
}

/** Why the push as a whole is refused before any of it is looked at, else null. */
function refusal(core: Core, body: PushBodyT): Error | null {
  const { config } = core;
  if (body.schema_version < config.schema_versions.min || body.schema_version > config.schema_versions.max) {
    return core.ctx.error('IQP_E_SYNC_SCHEMA_VERSION', `schema_version ${body.schema_version} is outside ${config.schema_versions.min}–${config.schema_versions.max}, the range this registry accepts.`, {
      details: { field: 'body.schema_version', min: config.schema_versions.min, max: config.schema_versions.max },
    });
  }
  if (body.mutations.length > config.max_push_mutations) {
    return core.ctx.error('IQP_E_SYNC_PUSH_TOO_LARGE', `The push has ${body.mutations.length} mutations; send at most ${config.max_push_mutations} at once.`, { details: { field: 'body.mutations', max: config.max_push_mutations } });
  }
  return null;
}

/**
 * Every push counts against the user's push limit, refused ones included: the count is the
 * transaction's first step, and a refusal commits it (with nothing else) before it is thrown.
 */
export async function push(core: Core, userId: string, body: PushBodyT): Promise<{ results: PushResultT[]; head: number; counts: PushCounts }> {
  const invalid = refusal(core, body);
  // Serialized and digested before the transaction: other pushes (other processes) wait for its lock, not for this.
  const sents = invalid ? [] : body.mutations.map(sent);
  const out = await core.ctx.db.transaction(async (tx) => {
    const refused =
      (await core.overLimit(core.pushLimit, userId, tx)) ?? invalid ?? (await core.inactive(userId, tx)) ?? (await core.claimOrRefuse(userId, body.device_id, body.device_name ?? null, tx));
    if (refused) return { refused };
    const user = await core.ensureUser(userId, tx);
    const batch = new Batch(core, tx, userId, body.device_id, body.device_name ?? null, body.schema_version, user.head, user.floor);
    await batch.prefetch(body.mutations);
    const results: PushResultT[] = [];
    const first = new Map<string, { r: PushResultT; digest: string }>();
    for (const one of sents) {
      const m = one.m;
      const earlier = first.get(m.mutation_id);
      // The same id twice in one push: applied once; a second copy answers duplicate with the first's version.
      if (earlier && earlier.digest === one.digest) {
        const { error: _error, conflict_id: _conflict, ...rest } = earlier.r;
        results.push(batch.count({ ...rest, status: 'duplicate' }));
        continue;
      }
      const applied = batch.apply(one);
      const r = applied instanceof Promise ? await applied : applied;
      if (!earlier) first.set(m.mutation_id, { r, digest: one.digest });
      results.push(r);
    }
    await batch.finish();
    if (batch.lastSeq !== user.head) await core.store.setHead(userId, batch.lastSeq, tx);
    // In the push's transaction: the entry exists exactly when the push does, at no commit of its own.
    await core.ctx.audit({ action: 'push', actor: `user:${userId}`, target: `device:${body.device_id}`, details: { mutations: body.mutations.length, ...batch.counts } }, { tx });
    return { results, head: batch.lastSeq, counts: batch.counts };
  }, core.userTx(userId));
  if ('refused' in out) throw out.refused;
  return out;
}
