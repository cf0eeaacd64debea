/**
 * Publishing one pack: the file streams as the raw body of `PUT /v1/admin/packs`, re-opened for
 * every attempt, never held in memory, with its signature in X-Iqp-Signature so the registry can
 * refuse a pack it does not trust before reading its content. The registry verifies it fully; versions are immutable, so
 * an identical re-upload is a success (200) and a different one with the same version is
 * IQP_E_VERSION_EXISTS (409).
 */
import { createReadStream } from 'node:fs';
import { pipeline, Transform } from 'node:stream';
import { IqpError } from '../errors.js';
import { requireFile } from '../files.js';
import { MAX_SENT_SIGNATURE_BYTES } from '../pack/format.js';
import { readSignatureEntry } from '../pack/signature-entry.js';
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
 * X-Iqp-Signature for the pack at `path`. The signature is the archive's last entry: read once here,
 * the registry checks it against its keys when the manifest arrives and verifies a trusted pack in
 * one pass. An unsigned pack, or one whose signature is over the header's limit, goes without (the
 * registry then reads it twice).
 */
export async function signatureHeaders(path: string): Promise<Record<string, string>> {
  const signature = await readSignatureEntry(path);
  return signature !== null && signature.length <= MAX_SENT_SIGNATURE_BYTES ? { 'x-iqp-signature': signature.toString('base64') } : {};
}

export async function publishFile(client: RegistryClient, path: string, onProgress?: (sent: number, total: number) => void): Promise<Published> {
  const info = await requireFile(path, 'Pack');
  // Its size goes in Content-Length, and each attempt reads it again: a pipe will not do.
  if (!info.isFile()) throw new IqpError('IQP_E_USAGE', `${path} is not a file.`, { path });
  const size = info.size;
  client.requireToken();
  const signatureHeader = await signatureHeaders(path);
  const body = () => {
    let sent = 0;
    const counter = new Transform({
      highWaterMark: 1024 * 1024,
      transform(chunk: Buffer, _enc, done) {
        sent += chunk.length;
        onProgress?.(sent, size);
        done(null, chunk);
      },
    });
    // pipeline carries a read error of the file to `counter`, which the client reports as local.
    return pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), counter, () => {});
  };
  const res = await client.json<PublishResponse>({
    method: 'PUT',
    path: '/v1/admin/packs',
    auth: true,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), ...signatureHeader },
    body,
    expect: [200, 201],
    headersTimeoutMs: VERIFY_TIMEOUT_MS,
  });
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
