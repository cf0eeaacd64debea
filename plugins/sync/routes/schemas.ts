/** The sync protocol's JSON shapes (docs/sync-protocol.md is their prose). */
import type { Static } from 'typebox';
import { Type } from '../../../server/plugins/api.js';

export const DeviceId = Type.String({ pattern: '^[A-Za-z0-9._:-]{8,128}$', description: 'Random and stable per install (a UUID is fine); it belongs to the first account that syncs with it.' });
export const EntityName = Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$', description: 'One of the entities the registry’s sync config lists.' });
export const EntityId = Type.String({ minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f]+$', description: 'The entity’s id, chosen by the app.' });
export const Payload = Type.Record(Type.String(), Type.Unknown(), { description: 'A JSON object; its top-level fields are what merges work on. Unknown fields are kept.' });
export const Seq = Type.Integer({ minimum: 0, description: 'The per-user sequence number: the order of every change to the user’s data, given by the registry.' });
export const Version = Type.Integer({ minimum: 0, description: 'The entity’s version, one more with each change.' });

export const Mutation = Type.Object(
  {
    mutation_id: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$', description: 'Unique per device, forever: a replay with the same id returns the first answer.' }),
    entity: EntityName,
    entity_id: EntityId,
    op: Type.Union([Type.Literal('upsert'), Type.Literal('patch'), Type.Literal('delete')]),
    payload: Type.Optional(Type.Union([Payload, Type.Null()], { description: 'upsert: the whole object; patch: the top-level fields to set; delete: omitted or null.' })),
    base_version: Type.Optional(Type.Integer({ minimum: 0, description: 'The version of the entity this device last saw (0 or omitted: never saw it).' })),
    client_ts: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Integer()], { description: 'When the device made the change; informational, never decides order.' })),
  },
  { additionalProperties: false },
);

export const PushBody = Type.Object(
  {
    device_id: DeviceId,
    device_name: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Shown in conflict summaries (“phone”, “Ann’s tablet”).' })),
    schema_version: Type.Integer({ minimum: 1, description: 'The app’s data schema version; the registry upgrades older payloads.' }),
    mutations: Type.Array(Mutation, { description: 'In the order the device made them.' }),
  },
  { additionalProperties: false },
);

export const ResultError = Type.Object({ code: Type.String(), message: Type.String(), field: Type.Optional(Type.String()) }, { additionalProperties: false });

export const PushResult = Type.Object(
  {
    mutation_id: Type.String(),
    status: Type.Union([Type.Literal('applied'), Type.Literal('merged'), Type.Literal('conflict'), Type.Literal('duplicate'), Type.Literal('rejected')]),
    entity: Type.String(),
    entity_id: Type.String(),
    version: Type.Optional(Version),
    seq: Type.Optional(Seq),
    conflict_id: Type.Optional(Type.String()),
    error: Type.Optional(ResultError),
  },
  { additionalProperties: false },
);

export const PushResponse = Type.Object({ results: Type.Array(PushResult), head: Seq }, { additionalProperties: false });

export const PullBody = Type.Object(
  {
    device_id: DeviceId,
    cursor: Type.Union([Type.String({ maxLength: 200 }), Type.Null()], { description: 'null: from the beginning; else the cursor the last pull returned.' }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 500 })),
    max_bytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 67108864, default: 1048576, description: 'Payload bytes per page (at least one change is always sent); capped by the registry’s max_pull_bytes.' })),
    wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 30, default: 0, description: 'Seconds to hold the request when nothing is new (long poll).' })),
  },
  { additionalProperties: false },
);

export const Change = Type.Object(
  {
    entity: Type.String(),
    entity_id: Type.String(),
    op: Type.Union([Type.Literal('upsert'), Type.Literal('delete')]),
    payload: Type.Union([Payload, Type.Null()]),
    version: Version,
    seq: Seq,
  },
  { additionalProperties: false },
);

export const ConflictView = Type.Object(
  {
    id: Type.String(),
    entity: Type.String(),
    entity_id: Type.String(),
    seq: Seq,
    fields: Type.Array(Type.String(), { description: 'The fields both sides changed; ["(deleted)"] when one side deleted the entity.' }),
    base: Type.Union([Payload, Type.Null()]),
    winner: Type.Union([Payload, Type.Null()], { description: 'What the entity became (null: deleted).' }),
    loser: Type.Union([Payload, Type.Null()], { description: 'What the other side had (null: it deleted the entity).' }),
    winner_device: Type.Union([Type.String(), Type.Null()]),
    loser_device: Type.Union([Type.String(), Type.Null()]),
    summary: Type.String(),
    status: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
    resolution: Type.Union([Type.Literal('winner'), Type.Literal('loser'), Type.Literal('payload'), Type.Null()]),
    created_at: Type.String(),
    resolved_at: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const PullResponse = Type.Object(
  {
    changes: Type.Array(Change),
    conflicts: Type.Array(ConflictView),
    cursor: Type.String(),
    has_more: Type.Boolean(),
    head: Seq,
    reset: Type.Optional(
      Type.Object(
        { reason: Type.Union([Type.Literal('cursor_expired'), Type.Literal('cursor_unknown'), Type.Literal('data_replaced')]) },
        { additionalProperties: false, description: 'Push what is queued, then page a snapshot from `cursor` until has_more is false; drop local entities it did not mention.' },
      ),
    ),
  },
  { additionalProperties: false },
);

export type PushBodyT = Static<typeof PushBody>;
export type MutationT = Static<typeof Mutation>;
export type PushResultT = Static<typeof PushResult>;
export type PullBodyT = Static<typeof PullBody>;
export type ChangeT = Static<typeof Change>;
export type ConflictViewT = Static<typeof ConflictView>;
export type PullResponseT = Static<typeof PullResponse>;
