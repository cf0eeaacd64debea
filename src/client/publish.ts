/**
 * Publishing one pack: the file streams as the raw body of `PUT /v1/admin/packs`, re-opened for
 * every attempt, never held in memory, with its signature in X-Iqp-Signature so the registry can
 * refuse a pack it does not trust before reading its content. The registry verifies it fully; versions are immutable, so
 * an identical re-upload is a success (200) and a different one with the same version is
 * IQP_E_VERSION_EXISTS (409). A success counts only when it describes the pack sent: the SHA-256
 * hashed as it streamed, its size, the manifest's id and version, and the signature's key; a
 * proxy or another server answering in the registry's place is IQP_E_REGISTRY.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline, Transform } from 'node:stream';
import { IqpError } from '../errors.js';
import { requireFile } from '../files.js';
import { MAX_SENT_SIGNATURE_BYTES } from '../pack/format.js';
import { parseSignature } from '../pack/minisign.js';
import { signatureText } from '../pack/reader.js';
import { readManifestAndSignature, readSignatureEntry } from '../pack/signature-entry.js';
import type { RegistryClient } from './registry.js';
import type { PublishResponse } from './types.js';

export interface Published {
  readonly path: string;
  readonly status: 'published' | 'identical';
  readonly package_id: string;
  readonly version: string;
  readonly size_bytes: number;
  readonly sha256: string;
  readonly signer_key_id: string;
  readonly download_url: string;
}

/** Uploading is quick; the registry then decompresses and checks the whole pack before it answers. */
const VERIFY_TIMEOUT_MS = 30 * 60 * 1000;

/**
 * X-Iqp-Signature for a pack whose signature entry is `signature`. The signature is the archive's
 * last entry: read once before the upload, the registry checks it against its keys when the
 * manifest arrives and verifies a trusted pack in one pass. An unsigned pack, or one whose
 * signature is over the header's limit, goes without (the registry then reads it twice).
 */
function signatureHeader(signature: Buffer | null): Record<string, string> {
  return signature !== null && signature.length <= MAX_SENT_SIGNATURE_BYTES ? { 'x-iqp-signature': signature.toString('base64') } : {};
}

/** The headers `iqp publish` sends beside the pack at `path`: its signature (see signatureHeader). */
export async function signatureHeaders(path: string): Promise<Record<string, string>> {
  return signatureHeader(await readSignatureEntry(path));
}

/** What the registry's answer must say of the pack: read from it before, and while, it is sent. */
interface SentPack {
  readonly package_id: unknown;
  readonly version: unknown;
  readonly size_bytes: number;
  readonly sha256: string;
  /** The key id in the pack's signature; null when it has none iqp can read. */
  readonly signer_key_id: string | null;
}

/** The id and version the pack's manifest.json names, if it parses; the registry checks the rest. */
function manifestFacts(manifest: Buffer | null): { package_id: unknown; version: unknown } {
  try {
    const parsed: unknown = manifest === null ? null : JSON.parse(manifest.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) return { package_id: (parsed as Record<string, unknown>)['package_id'], version: (parsed as Record<string, unknown>)['version'] };
  } catch {
    // Not JSON: the registry refuses such a pack, so no answer can match it.
  }
  return { package_id: undefined, version: undefined };
}

function signerKeyId(signature: Buffer | null): string | null {
  try {
    return signature === null ? null : parseSignature(signatureText(signature)).keyId;
  } catch {
    return null;
  }
}

/** A value, short and on one line, for a message. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

/** What the answer says of `field`: `version "9.9.9"`, or `no version`. */
function said(a: Record<string, unknown>, field: string): string {
  return a[field] === undefined ? `no ${field}` : `${field} ${shown(a[field])}`;
}

/**
 * The answer to an upload, if it is the registry's acceptance of `sent`: `result` created or
 * identical, and the pack's own facts. Anything else is IQP_E_REGISTRY naming what differs.
 */
function checkAnswer(answer: unknown, sent: SentPack, what: string): PublishResponse {
  const refused = (why: string, details: Record<string, unknown>) =>
    new IqpError('IQP_E_REGISTRY', `${what}: ${why}`, details, {
      hint: 'Something other than the registry may have answered (a proxy, or a wrong --registry); check the URL, and whether the pack is listed with `iqp pull` or GET /v1/packs/<id>.',
    });
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw refused('the answer to the upload is not a JSON object.', { answer: shown(answer) });
  const a = answer as Record<string, unknown>;
  const differs: [field: string, text: string][] = [];
  if (a['result'] !== 'created' && a['result'] !== 'identical') differs.push(['result', `${said(a, 'result')} (expected "created" or "identical")`]);
  for (const field of ['package_id', 'version', 'sha256', 'size_bytes'] as const) {
    if (a[field] === undefined || a[field] !== sent[field]) differs.push([field, `${said(a, field)} (the pack's: ${shown(sent[field])})`]);
  }
  if (typeof a['signer_key_id'] !== 'string' || (sent.signer_key_id !== null && a['signer_key_id'] !== sent.signer_key_id)) {
    differs.push(['signer_key_id', `${said(a, 'signer_key_id')} (the pack's: ${sent.signer_key_id === null ? 'unreadable' : shown(sent.signer_key_id)})`]);
  }
  if (typeof a['download_url'] !== 'string') differs.push(['download_url', `${said(a, 'download_url')} (expected a URL)`]);
  if (differs.length > 0) {
    throw refused(`the answer does not describe the pack that was sent: ${differs.map(([, text]) => text).join('; ')}.`, { fields: differs.map(([field]) => field) });
  }
  return answer as PublishResponse;
}

export async function publishFile(client: RegistryClient, path: string, onProgress?: (sent: number, total: number) => void): Promise<Published> {
  const info = await requireFile(path, 'Pack');
  // Its size goes in Content-Length, and each attempt reads it again: a pipe will not do.
  if (!info.isFile()) throw new IqpError('IQP_E_USAGE', `${path} is not a file.`, { path });
  const size = info.size;
  client.requireToken();
  const entries = await readManifestAndSignature(path);
  // The bytes of the latest attempt, counted and hashed on their way out.
  let streamed: { bytes: number; hash: Hash } = { bytes: 0, hash: createHash('sha256') };
  const body = () => {
    const attempt = { bytes: 0, hash: createHash('sha256') };
    streamed = attempt;
    const counter = new Transform({
      highWaterMark: 1024 * 1024,
      transform(chunk: Buffer, _enc, done) {
        attempt.bytes += chunk.length;
        attempt.hash.update(chunk);
        onProgress?.(attempt.bytes, size);
        done(null, chunk);
      },
    });
    // pipeline carries a read error of the file to `counter`, which the client reports as local.
    return pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), counter, () => {});
  };
  const answer = await client.json<unknown>({
    method: 'PUT',
    path: '/v1/admin/packs',
    auth: true,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), ...signatureHeader(entries.signature) },
    body,
    expect: [200, 201],
    headersTimeoutMs: VERIFY_TIMEOUT_MS,
  });
  const what = client.describe('PUT', '/v1/admin/packs');
  // A registry answers once it has read the whole pack; an answer before that cannot be its verdict.
  if (streamed.bytes !== size) {
    throw new IqpError('IQP_E_REGISTRY', `${what}: answered after ${streamed.bytes} of the pack's ${size} bytes were sent.`, { sent_bytes: streamed.bytes, size_bytes: size });
  }
  const res = checkAnswer(answer, { ...manifestFacts(entries.manifest), size_bytes: size, sha256: streamed.hash.digest('hex'), signer_key_id: signerKeyId(entries.signature) }, what);
  return {
    path,
    status: res.result === 'created' ? 'published' : 'identical',
    package_id: res.package_id,
    version: res.version,
    size_bytes: res.size_bytes,
    sha256: res.sha256,
    signer_key_id: res.signer_key_id,
    download_url: res.download_url,
  };
}
