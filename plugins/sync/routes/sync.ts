/** The sync routes under /v1/sync (docs/sync-protocol.md). */
import { AUTH_V1, type PluginContext, type Principal, route, Type } from '../../../server/plugins/api.js';
import type { SyncConfig } from '../config.js';
import { listConflicts, resolveConflict } from '../conflicts.js';
import type { Core } from '../core.js';
import { pageJson, pull } from '../pull.js';
import { push } from '../push.js';
import { EXPORT_FORMAT, exportHead, exportLines, importLines, readExport } from '../transfer.js';
import { ConflictView, DeviceId, Payload, PullBody, PullResponse, PushBody, PushResponse } from './schemas.js';

const RETRY_AFTER = { 'Retry-After': 'Seconds to wait before trying again.' };
const SIGNED_IN = ['IQP_E_TOKEN_EXPIRED', 'IQP_E_TOKEN_INVALID', 'IQP_E_EMAIL_UNVERIFIED', 'IQP_E_DEVICE_FOREIGN', 'IQP_E_RATE_LIMITED'] as const;

/** Hard ceiling on a push body; the config's max_push_bytes (asked per request) is the limit that applies. */
export const pushRoute = (limit: () => number) =>
  route({
    id: 'sync.push',
    method: 'POST',
    path: '/push',
    summary: 'Push a device’s queued mutations: applied in order, in one transaction, one result each',
    description:
      'Replaying a push (same device_id and mutation_ids) returns the original results and writes nothing. A refused mutation is `rejected` in its result; the rest still apply.',
    auth: 'user',
    body: PushBody,
    maxBodyBytes: limit,
    responses: { 200: { description: 'One result per mutation, in order.', schema: PushResponse }, 429: { description: 'Too many pushes.', headers: RETRY_AFTER } },
    errors: [...SIGNED_IN, 'IQP_E_SYNC_PUSH_TOO_LARGE', 'IQP_E_SYNC_SCHEMA_VERSION', 'IQP_E_UPLOAD_TOO_LARGE'],
  });

export const pullRoute = route({
  id: 'sync.pull',
  method: 'POST',
  path: '/pull',
  summary: 'Pull the latest state of what changed after a cursor, paged; long-polls with `wait`',
  auth: 'user',
  body: PullBody,
  responses: { 200: { description: 'A page of changes, or a reset.', schema: PullResponse }, 429: { description: 'Too many pulls.', headers: RETRY_AFTER } },
  errors: [...SIGNED_IN],
});

export const conflictsRoute = route({
  id: 'sync.conflicts',
  method: 'GET',
  path: '/conflicts',
  summary: 'The account’s conflict records in id order (random, not by time); page with `after`',
  auth: 'user',
  query: Type.Object(
    {
      status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('resolved'), Type.Literal('all')], { default: 'open' })),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
      after: Type.Optional(Type.String({ maxLength: 64, description: 'The `next` of the previous page.' })),
    },
    { additionalProperties: false },
  ),
  responses: { 200: { description: 'A page of conflicts.', schema: Type.Object({ conflicts: Type.Array(ConflictView), next: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }) } },
  errors: ['IQP_E_TOKEN_EXPIRED', 'IQP_E_TOKEN_INVALID', 'IQP_E_EMAIL_UNVERIFIED'],
});

export const resolveRoute = route({
  id: 'sync.resolveConflict',
  method: 'POST',
  path: '/conflicts/{id}/resolve',
  summary: 'Resolve a conflict: keep the winner, the loser, or a payload; writes a new version that syncs like any change',
  auth: 'user',
  params: Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
  body: Type.Object(
    { device_id: DeviceId, keep: Type.Union([Type.Literal('winner'), Type.Literal('loser'), Payload], { description: '"winner", "loser", or the payload to keep (null sides mean deleted).' }) },
    { additionalProperties: false },
  ),
  responses: {
    200: {
      description: 'The resolved conflict and the entity’s new version.',
      schema: Type.Object({ conflict: ConflictView, version: Type.Integer(), seq: Type.Integer() }, { additionalProperties: false }),
    },
  },
  errors: ['IQP_E_TOKEN_EXPIRED', 'IQP_E_TOKEN_INVALID', 'IQP_E_EMAIL_UNVERIFIED', 'IQP_E_NOT_FOUND', 'IQP_E_SYNC_CONFLICT_RESOLVED', 'IQP_E_SYNC_PAYLOAD_INVALID', 'IQP_E_SYNC_PAYLOAD_TOO_LARGE', 'IQP_E_DEVICE_FOREIGN', 'IQP_E_UPLOAD_TOO_LARGE'],
});

export const exportRoute = route({
  id: 'sync.export',
  method: 'GET',
  path: '/export',
  summary: 'The account’s data as NDJSON ordered by (entity, entity_id), ending in a trailer with count, head and sha256',
  auth: 'user',
  query: Type.Object(
    {
      offset: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Data lines to skip (resume); the trailer still covers all.' })),
      head: Type.Optional(Type.Integer({ minimum: 0, description: 'The head the interrupted export reported (X-Iqp-Sync-Head); 409 if the data moved since.' })),
    },
    { additionalProperties: false },
  ),
  responses: { 200: { description: `NDJSON (${EXPORT_FORMAT}).`, contentType: 'application/x-ndjson', headers: { 'X-Iqp-Sync-Head': 'The head the export was made at.' } } },
  errors: ['IQP_E_TOKEN_EXPIRED', 'IQP_E_TOKEN_INVALID', 'IQP_E_EMAIL_UNVERIFIED', 'IQP_E_SYNC_EXPORT_CHANGED'],
});

export const importRoute = route({
  id: 'sync.import',
  method: 'POST',
  path: '/import',
  summary: 'Import an export: every line and the checksum are checked before anything changes, then one transaction',
  auth: 'user',
  query: Type.Object({ mode: Type.Union([Type.Literal('replace'), Type.Literal('merge')]) }, { additionalProperties: false }),
  rawBody: { contentTypes: ['application/x-ndjson'], description: 'A file GET /v1/sync/export wrote.' },
  responses: {
    200: {
      description: 'Imported.',
      schema: Type.Object({ imported: Type.Integer(), mode: Type.String(), head: Type.Integer(), sha256: Type.String() }, { additionalProperties: false }),
    },
  },
  errors: ['IQP_E_TOKEN_EXPIRED', 'IQP_E_TOKEN_INVALID', 'IQP_E_EMAIL_UNVERIFIED', 'IQP_E_SYNC_IMPORT_INVALID', 'IQP_E_UPLOAD_TOO_LARGE', 'IQP_E_REQUEST_TIMEOUT'],
});

export function syncRoutes(ctx: PluginContext<SyncConfig>, core: () => Core): void {
  const metrics = {
    mutations: ctx.counter({ name: 'mutations', help: 'Pushed mutations by result (applied, merged, conflict, duplicate, rejected).', labels: ['status'] }),
    pushes: ctx.counter({ name: 'pushes', help: 'Pushes answered.' }),
    pulls: ctx.counter({ name: 'pulls', help: 'Pulls answered.' }),
    waits: ctx.counter({ name: 'pull_waits', help: 'Pulls that found nothing new and began to wait (long-poll).' }),
    resets: ctx.counter({ name: 'resets', help: 'Pulls answered with reset, by reason.', labels: ['reason'] }),
    exports: ctx.counter({ name: 'exports', help: 'Exports started.' }),
    imports: ctx.counter({ name: 'imports', help: 'Imports applied, by mode.', labels: ['mode'] }),
  };
  /** The signed-in user allowed to sync (the auth config's unverified_may decides for unverified emails). */
  const user = (principal: Principal | null): string => {
    if (principal?.kind !== 'user') throw ctx.error('IQP_E_TOKEN_INVALID', 'Sync needs a signed-in user’s access token.');
    if (!ctx.service(AUTH_V1).may(principal, 'sync')) throw ctx.error('IQP_E_EMAIL_UNVERIFIED', 'Verify the account’s email address before syncing.');
    return principal.userId;
  };

  ctx.routes.route(pushRoute(() => core().config.max_push_bytes), async ({ principal, body }) => {
    const c = core();
    const userId = user(principal);
    // Counted against the user's limit inside the push's transaction (push.ts).
    const out = await c.gate(() => push(c, userId, body));
    if (out.counts.applied + out.counts.merged + out.counts.conflict > 0) c.notifier.changed(userId);
    metrics.pushes.inc();
    for (const [status, n] of Object.entries(out.counts)) if (n > 0) metrics.mutations.inc({ status }, n);
    return { results: out.results, head: out.head };
  });

  ctx.routes.route(pullRoute, async ({ principal, body, signal }) => {
    const c = core();
    const userId = user(principal);
    await c.limit(c.pullLimit, userId);
    const out = await pull(c, userId, body, signal, () => metrics.waits.inc());
    metrics.pulls.inc();
    if (out.reset) metrics.resets.inc({ reason: out.reset });
    if (out.reset) await ctx.audit({ action: 'reset', actor: `user:${userId}`, target: `device:${body.device_id}`, details: { reason: out.reset } });
    // Payloads are stored as JSON text: the answer splices them in rather than parsing and re-serializing each.
    return ctx.stream(200, pageJson(out.page), { contentType: 'application/json; charset=utf-8', headers: { 'Cache-Control': 'no-store' } });
  });

  ctx.routes.route(conflictsRoute, async ({ principal, query }) => {
    const userId = user(principal);
    await core().active(userId);
    return listConflicts(core(), userId, query.status ?? 'open', query.after ?? '', query.limit ?? 100);
  });

  ctx.routes.route(resolveRoute, async ({ principal, params, body }) => resolveConflict(core(), user(principal), params.id, body.device_id, body.keep));

  ctx.routes.route(exportRoute, async ({ principal, query }) => {
    const c = core();
    const userId = user(principal);
    await c.active(userId);
    const head = await exportHead(c, userId);
    if (query.head !== undefined && query.head !== head) throw ctx.error('IQP_E_SYNC_EXPORT_CHANGED', `The data moved from head ${query.head} to ${head} since the export started; start again from the beginning.`);
    metrics.exports.inc();
    await ctx.audit({ action: 'export', actor: `user:${userId}`, target: `user:${userId}`, details: { offset: query.offset ?? 0, head } });
    return ctx.stream(200, exportLines(c, userId, query.offset ?? 0, head), { contentType: 'application/x-ndjson', headers: { 'X-Iqp-Sync-Head': String(head), 'Cache-Control': 'no-store' } });
  });

  ctx.routes.route(importRoute, async ({ principal, query, stream, headers }) => {
    const c = core();
    const userId = user(principal);
    const type = String(headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-ndjson') throw ctx.error('IQP_E_INVALID_REQUEST', 'Send the export file as Content-Type: application/x-ndjson.', { details: { field: 'content-type' } });
    const file = await readExport(c, stream!);
    const out = await importLines(c, userId, query.mode, file.lines, true);
    metrics.imports.inc({ mode: query.mode });
    await ctx.audit({ action: 'import', actor: `user:${userId}`, target: `user:${userId}`, details: { mode: query.mode, lines: file.lines.length, written: out.imported } });
    return { imported: file.lines.length, mode: query.mode, head: out.head, sha256: file.trailer.sha256 };
  });
}
