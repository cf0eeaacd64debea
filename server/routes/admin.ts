/** Admin endpoints: publishing and deprecating packs, publisher keys, the audit log. */
import express, { Router, type Request, type Response } from 'express';
import { IqpError } from '../../src/errors.js';
import { isSemver } from '../../src/pack/manifest.js';
import type { ServerConfig } from '../config.js';
import { actorOf, requireRole } from '../http/auth.js';
import { onlyIdleDeadline } from '../http/deadlines.js';
import type { Slots } from '../http/slots.js';
import { uploadSignature } from '../http/upload-signature.js';
import type { KeyService } from '../services/keys.js';
import type { PackService } from '../services/packs.js';
import type { TokenService } from '../services/tokens.js';
import type { AuditFilter, MetadataStore } from '../stores/types.js';
import { baseUrl, manifestResponse } from './public.js';
import { pageParams } from './paging.js';
import { PACK_MEDIA_TYPE } from './download.js';

export interface AdminDeps {
  readonly config: ServerConfig;
  readonly packs: PackService;
  readonly keys: KeyService;
  readonly tokens: TokenService;
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

function jsonBody(req: Request): Record<string, unknown> {
  const body: unknown = req.body;
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new IqpError('IQP_E_USAGE', 'The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

/** ?actor=&target=&action=&since= (see AuditFilter); since is any time Date reads, compared in UTC. */
function auditFilter(req: Request): AuditFilter {
  const text = (name: string): string | undefined => {
    const value = req.query[name];
    // Empty means no filter, as it always has.
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string' || value.length > 500) throw new IqpError('IQP_E_USAGE', `${name} must be one value of at most 500 characters.`);
    return value;
  };
  const since = text('since');
  const at = since === undefined ? null : Date.parse(since);
  if (at !== null && Number.isNaN(at)) throw new IqpError('IQP_E_USAGE', `since must be a time such as 2026-11-22 or 2026-11-22T08:00:00Z (got ${JSON.stringify(since)}).`);
  const filter = { actor: text('actor'), target: text('target'), action: text('action'), since: at === null ? undefined : new Date(at).toISOString() };
  return Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined)) as AuditFilter;
}

export function adminRoutes(d: AdminDeps): Router {
  const r = Router();
  const publisher = requireRole(d.tokens, 'publisher');
  const admin = requireRole(d.tokens, 'admin');
  const json = express.json({ limit: '64kb' });

  r.put('/packs', publisher, async (req, res) => {
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
      res.status(result.status === 'created' ? 201 : 200).json({ result: result.status, ...manifestResponse(base, result.pack) });
    } catch (err) {
      await afterRefusedUpload(req, res, bodyStarted && signature === null);
      throw err;
    }
  });

  r.post('/packs/:id/:version/deprecate', publisher, json, async (req, res) => {
    const body = jsonBody(req);
    const message = body['message'];
    // No default: a request without a JSON message must not silently un-deprecate.
    if (typeof message !== 'string' || message.length > 2000) {
      throw new IqpError('IQP_E_USAGE', 'Send a JSON body {"message": "…"} with Content-Type application/json: the reason, at most 2000 characters ("" un-deprecates).');
    }
    const version = String(req.params['version']);
    const id = String(req.params['id']);
    // A version an older registry stored before versions were checked with the semver library can
    // still be deprecated by its exact text, so an operator can take it out of circulation.
    if (!isSemver(version) && !(await d.packs.isStored(id, version))) {
      throw new IqpError('IQP_E_INVALID_VERSION', `${JSON.stringify(version)} is not a semver version.`);
    }
    const base = baseUrl(req, d.config); // a bad Host is refused before anything changes
    const pack = await d.packs.deprecate(id, version, message, actorOf(res));
    res.json(manifestResponse(base, pack));
  });

  r.get('/keys', admin, async (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ keys: await d.keys.list() });
  });

  r.post('/keys', admin, json, async (req, res) => {
    const body = jsonBody(req);
    if (typeof body['public_key'] !== 'string') throw new IqpError('IQP_E_USAGE', 'public_key (the contents of a minisign .pub file) is required.');
    if (body['name'] !== undefined && typeof body['name'] !== 'string') throw new IqpError('IQP_E_USAGE', 'name must be a string.');
    const purpose = body['purpose'] ?? 'pack';
    if (purpose !== 'pack' && purpose !== 'release') throw new IqpError('IQP_E_USAGE', 'purpose must be "pack" (signs packs) or "release" (signs release manifests).');
    const { status, key } = await d.keys.add(body['public_key'], (body['name'] as string | undefined) ?? '', actorOf(res), purpose);
    res.status(status === 'created' ? 201 : 200).json({ status, key });
  });

  r.delete('/keys/:keyId', admin, async (req, res) => {
    await d.keys.remove(String(req.params['keyId']), actorOf(res), req.query['force'] === 'true');
    res.status(204).end();
  });

  r.get('/audit', admin, async (req, res) => {
    const { limit, cursor } = pageParams(req);
    const page = await d.meta.listAudit(limit, cursor, auditFilter(req));
    res.set('Cache-Control', 'no-store').json({ entries: page.items, paging: { limit, next_cursor: page.next_cursor, has_more: page.has_more } });
  });

  return r;
}
