/** Admin endpoints: publishing and deprecating packs, publisher keys, the audit log. */
import type { Request, Response, Router } from 'express';
import * as api from '../../src/api/core/admin.js';
import { DEFAULT_PAGE } from '../../src/api/core/common.js';
import { PACK_MEDIA_TYPE } from '../../src/api/core/packs.js';
import type { QueryOf } from '../../src/api/route.js';
import { IqpError } from '../../src/errors.js';
import { isSemver } from '../../src/pack/manifest.js';
import type { ServerConfig } from '../config.js';
import { reply } from '../http/contract.js';
import { actorOf } from '../http/guard.js';
import { onlyIdleDeadline } from '../http/deadlines.js';
import type { Slots } from '../http/slots.js';
import { uploadSignature } from '../http/upload-signature.js';
import type { KeyService } from '../services/keys.js';
import type { PackService } from '../services/packs.js';
import type { AuditFilter, MetadataStore } from '../stores/types.js';
import { baseUrl, manifestResponse } from './public.js';
import { declaredRouter, NO_STORE, type RouteContract } from './mount.js';

export interface AdminDeps {
  readonly config: ServerConfig;
  readonly packs: PackService;
  readonly keys: KeyService;
  readonly meta: MetadataStore;
  /** Uploads being received at once (max_concurrent_uploads). */
  readonly uploads: Slots;
}

/** Seconds a client refused for a busy registry waits before trying again. */
const BUSY_RETRY_AFTER_S = 5;

const UPLOAD_TYPES = new Set(['application/octet-stream', PACK_MEDIA_TYPE, 'application/zstd']);
/** After a refused upload, read at most this much of the rest so the client sees the error response. */
const DRAIN_LIMIT = 64 * 1024 * 1024;

/**
 * Makes sure a client still sending a refused upload reads the answer rather than a reset
 * connection. Refused before any body byte was read (415, a declared length over the limit), the
 * answer goes out at once and the rest is drained behind it: such a client may be waiting for it
 * before sending. So is an upload that came with X-Iqp-Signature (iqp publish, which reads an
 * answer that comes early): its refusal, for an untrusted signature usually, is the point of
 * answering before the content is read. Other uploads refused mid-body (over the limit while
 * chunked, a pack that fails verification) are answered once the rest has been read and
 * discarded, because a server that answers and closes while the client still writes makes the
 * client's TCP stack drop the answer on the reset. Bodies over DRAIN_LIMIT are not read: the
 * answer says Connection: close.
 */
async function afterRefusedUpload(req: Request, res: Response, answerAfterDrain: boolean): Promise<void> {
  if (req.complete || req.destroyed) return;
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > DRAIN_LIMIT) {
    res.setHeader('Connection', 'close');
    return;
  }
  const drained = new Promise<void>((resolve) => {
    let bytes = 0;
    const done = (): void => {
      req.off('data', onData);
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes <= DRAIN_LIMIT) return;
      req.pause();
      res.setHeader('Connection', 'close');
      done();
    };
    req.on('data', onData);
    req.once('end', done);
    req.once('close', done);
    req.once('error', done);
    req.resume();
  });
  if (answerAfterDrain) await drained;
}

/** The audit filter from the validated query: empty values mean no filter, as they always have. */
function auditFilter(query: QueryOf<typeof api.audit>): AuditFilter {
  const text = (value: string | undefined): string | undefined => (value === '' ? undefined : value);
  const since = text(query.since);
  const at = since === undefined ? null : Date.parse(since);
  if (at !== null && Number.isNaN(at)) {
    throw new IqpError('IQP_E_INVALID_REQUEST', `query.since must be a time such as 2026-11-22 or 2026-11-22T08:00:00Z (got ${JSON.stringify(since)}).`, { field: 'query.since' });
  }
  const filter = { actor: text(query.actor), target: text(query.target), action: text(query.action), since: at === null ? undefined : new Date(at).toISOString() };
  return Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined)) as AuditFilter;
}

export function adminRoutes(d: AdminDeps, contract: RouteContract): Router {
  const { router, mount } = declaredRouter(contract);

  mount(api.publish, async (_input, req, res) => {
    const release = d.uploads.take();
    if (!release) {
      // Not reading the body is the point: close rather than drain it.
      res.setHeader('Retry-After', String(BUSY_RETRY_AFTER_S));
      res.setHeader('Connection', 'close');
      throw new IqpError('IQP_E_BUSY', `The registry is receiving ${d.uploads.size} uploads already (max_concurrent_uploads).`);
    }
    res.once('close', release);
    let bodyStarted = false;
    let signature: Buffer | null = null;
    try {
      const type = (req.headers['content-type'] ?? 'application/octet-stream').split(';')[0]!.trim().toLowerCase();
      if (!UPLOAD_TYPES.has(type)) {
        throw new IqpError('IQP_E_UNSUPPORTED_MEDIA_TYPE', `Content-Type ${type} is not a pack; send the raw .iqp bytes as application/octet-stream.`);
      }
      const declared = Number(req.headers['content-length'] ?? NaN);
      if (Number.isFinite(declared) && declared > d.config.maxUploadBytes) {
        throw new IqpError('IQP_E_UPLOAD_TOO_LARGE', `The upload is ${declared} bytes; the registry accepts at most ${d.config.maxUploadBytes}.`, { limit: d.config.maxUploadBytes });
      }
      const base = baseUrl(req, d.config); // a bad Host is refused before anything is stored
      signature = uploadSignature(req);
      onlyIdleDeadline(req, res, d.config.uploadIdleTimeoutMs);
      // Refusing an upload stops reading it without destroying the request (as a plain for-await
      // would), so that afterRefusedUpload can still drain the rest and the client gets the answer.
      bodyStarted = true;
      const result = await d.packs.upload(req.iterator({ destroyOnReturn: false }), actorOf(res), signature);
      return reply(result.status === 'created' ? 201 : 200, { result: result.status, ...manifestResponse(base, result.pack) });
    } catch (err) {
      await afterRefusedUpload(req, res, bodyStarted && signature === null);
      throw err;
    }
  });

  mount(api.deprecate, async ({ params, body }, req, res) => {
    const { id, version } = params;
    // A version an older registry stored before versions were checked with the semver library can
    // still be deprecated by its exact text, so an operator can take it out of circulation.
    if (!isSemver(version) && !(await d.packs.isStored(id, version))) {
      throw new IqpError('IQP_E_INVALID_VERSION', `${JSON.stringify(version)} is not a semver version.`);
    }
    const base = baseUrl(req, d.config); // a bad Host is refused before anything changes
    return manifestResponse(base, await d.packs.deprecate(id, version, body.message, actorOf(res)));
  });

  mount(api.listKeys, async () => reply(200, { keys: await d.keys.list() }, NO_STORE));

  mount(api.addKey, async ({ body }, _req, res) => {
    const { status, key } = await d.keys.add(body.public_key, body.name ?? '', actorOf(res), body.purpose ?? 'pack');
    return reply(status === 'created' ? 201 : 200, { status, key });
  });

  mount(api.removeKey, async ({ params, query }, _req, res) => {
    await d.keys.remove(params.keyId, actorOf(res), query.force === 'true');
    return reply(204);
  });

  mount(api.audit, async ({ query }) => {
    const limit = query.limit ?? DEFAULT_PAGE;
    const page = await d.meta.listAudit(limit, query.cursor ?? null, auditFilter(query));
    return reply(200, { entries: page.items, paging: { limit, next_cursor: page.next_cursor, has_more: page.has_more } }, NO_STORE);
  });

  return router;
}
