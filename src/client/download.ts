/**
 * A resumable download into a `.part` file. A part left by an earlier run is continued with
 * `Range: bytes=<size>-` and `If-Range: "<sha256>"`, so the registry sends the rest only if the
 * file is still the one the part came from (206), and the whole file otherwise (200). The size and
 * SHA-256 are checked against what the registry announced, and the body is never read past that
 * size; a 206 must be exactly the rest of the file. A resumed download that fails a check is
 * downloaded once more from zero before giving up (deleting the part), since the old part may be
 * what was wrong.
 *
 * A registry that keeps its packs in object storage may answer with a redirect to it (a presigned
 * or CDN URL): up to MAX_REDIRECTS are followed, to http(s) URLs only, and the rest of the
 * download, resumes included, goes to where they lead, with a plain `Range` and no `If-Range`
 * (an object store's ETag is not the pack's sha256), relying on the size and SHA-256 checks at the
 * end. A download started again from zero asks the registry again (a presigned URL expires).
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rm, stat } from 'node:fs/promises';
import { IqpError } from '../errors.js';
import { readFileChunks } from '../pack/reader.js';
import { BodyEndedShort } from './errors.js';
import { discardBody, type RegistryClient, type RequestSpec, type Response } from './registry.js';

export interface Expected {
  readonly size: number;
  readonly sha256: string;
}

export interface DownloadResult {
  /** Bytes already in the part when this run began (0: none was there). */
  readonly resumedFrom: number;
  /** True when the part had to be thrown away and the file downloaded from zero. */
  readonly restarted: boolean;
}

export interface DownloadHooks {
  onProgress?(done: number, total: number): void;
  onNote?(message: string): void;
  /** The bytes are in; the long check of the whole pack begins. */
  onVerify?(): void;
}

interface State {
  written: number;
  hash: Hash;
}

async function partSize(path: string): Promise<number> {
  const info = await stat(path).catch(() => null);
  return info?.isFile() ? info.size : 0;
}

async function hashExisting(path: string, size: number): Promise<State> {
  const hash = createHash('sha256');
  if (size > 0) for await (const chunk of readFileChunks(path)) hash.update(chunk);
  return { written: size, hash };
}

async function truncate(path: string): Promise<State> {
  await (await open(path, 'w')).close();
  return { written: 0, hash: createHash('sha256') };
}

/** Redirects a download follows, at most: the registry to a CDN, and that CDN to its edge. */
export const MAX_REDIRECTS = 2;
const REDIRECTS = [301, 302, 303, 307, 308];

/** Where the next request goes: the registry's URL, or where its redirects led. */
interface Target {
  readonly url: URL;
  readonly hops: number;
}

/** Where a redirect leads, or why it is refused. */
function follow(res: Response, from: Target): Target {
  const location = res.headers['location'];
  if (typeof location !== 'string' || location === '') throw new IqpError('IQP_E_REGISTRY', `The registry answered ${res.statusCode} to a download without a Location to follow.`);
  let next: URL;
  try {
    next = new URL(location, from.url);
  } catch {
    throw new IqpError('IQP_E_REGISTRY', `The download was redirected to ${JSON.stringify(location)}, which is not a URL.`);
  }
  if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new IqpError('IQP_E_REGISTRY', `The download was redirected to a ${next.protocol} URL; only http and https are followed.`);
  if (from.hops >= MAX_REDIRECTS) throw new IqpError('IQP_E_REGISTRY', `The download was redirected more than ${MAX_REDIRECTS} times (last to ${next.origin}).`);
  return { url: next, hops: from.hops + 1 };
}

/** Details that mark a 206 whose Content-Range is not the rest of the file from where the part ends. */
const BAD_RANGE = 'content_range';

/** A 206 must carry exactly the bytes asked for: from the end of the part to the end of the file. */
function checkContentRange(res: Response, from: number, expected: Expected): void {
  const header = res.headers['content-range'];
  const want = `bytes ${from}-${expected.size - 1}/${expected.size}`;
  if (typeof header !== 'string' || header.trim() !== want) {
    throw new IqpError('IQP_E_REGISTRY', `The registry answered 206 with Content-Range ${JSON.stringify(header ?? null)}; asked for ${want}.`, {
      [BAD_RANGE]: header ?? null,
      expected: want,
    });
  }
}

/** A Content-Length that says the body cannot be the rest of the file is refused before a byte is written. */
function checkContentLength(res: Response, remaining: number): void {
  const header = res.headers['content-length'];
  if (header === undefined) return;
  if (Number(header) !== remaining) {
    throw new IqpError('IQP_E_DOWNLOAD_MISMATCH', `The registry sends ${JSON.stringify(header)} bytes; ${remaining} were expected.`, { content_length: header, expected: remaining });
  }
}

/**
 * Failures that say the part, or the registry's idea of it, is wrong (rather than the network):
 * worth one download from zero when the part holds bytes, and the part is deleted if that fails too.
 */
function partSuspect(err: unknown): err is IqpError {
  if (!(err instanceof IqpError)) return false;
  return err.code === 'IQP_E_DOWNLOAD_MISMATCH' || err.code === 'IQP_E_RANGE_NOT_SATISFIABLE' || (err.code === 'IQP_E_REGISTRY' && err.details?.[BAD_RANGE] !== undefined);
}

export async function downloadResumable(client: RegistryClient, url: string, partPath: string, expected: Expected, hooks: DownloadHooks = {}): Promise<DownloadResult> {
  const resumedFrom = await partSize(partPath);
  let state = resumedFrom > expected.size ? await truncate(partPath) : await hashExisting(partPath, resumedFrom);
  if (resumedFrom > expected.size) hooks.onNote?.(`The partial download is larger than the pack (${resumedFrom} > ${expected.size} bytes); starting again.`);
  else if (resumedFrom === expected.size) hooks.onNote?.('A complete partial download is already there; checking it.');
  else if (resumedFrom > 0) hooks.onNote?.(`Resuming from byte ${resumedFrom} of ${expected.size}.`);
  let restarted = resumedFrom > expected.size;
  const registry: Target = { url: client.url(url), hops: 0 };
  let target = registry;

  const spec = (): RequestSpec => ({
    method: 'GET',
    path: target.url.href,
    headers: {
      accept: 'application/vnd.iqp.pack+zstd, application/octet-stream',
      // If-Range names the pack's sha256, which only the registry's ETag is.
      ...(state.written > 0 ? { range: `bytes=${state.written}-`, ...(target.hops === 0 ? { 'if-range': `"${expected.sha256}"` } : {}) } : {}),
    },
    expect: [200, 206, 416, ...REDIRECTS],
  });

  /** Takes one answer in; true when it was a redirect, to be followed with the next request. */
  const consume = async (res: Response): Promise<boolean> => {
    if (REDIRECTS.includes(res.statusCode)) {
      await res.body.dump();
      target = follow(res, target);
      hooks.onNote?.(`The registry sends the pack from ${target.url.origin}.`);
      return true;
    }
    if (res.statusCode === 416) {
      // The registry thinks our part reaches past the end: the file is not what we think it is.
      await res.body.dump();
      throw new IqpError('IQP_E_RANGE_NOT_SATISFIABLE', `The registry refused to resume from byte ${state.written}.`);
    }
    try {
      if (res.statusCode === 206) checkContentRange(res, state.written, expected);
      checkContentLength(res, res.statusCode === 200 ? expected.size : expected.size - state.written);
    } catch (err) {
      discardBody(res);
      throw err;
    }
    if (res.statusCode === 200) {
      if (state.written > 0) hooks.onNote?.('The registry sent the whole file (the pack changed, or it ignored the range); starting again.');
      state = await truncate(partPath);
    }
    const fh = await open(partPath, 'a');
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        // Stop at the announced size, whatever the body's length: an endless body must not fill the disk.
        if (state.written + chunk.length > expected.size) {
          throw new IqpError('IQP_E_DOWNLOAD_MISMATCH', `The download is longer than the ${expected.size} bytes the registry announced.`);
        }
        await fh.write(chunk);
        state.hash.update(chunk);
        state.written += chunk.length;
        hooks.onProgress?.(state.written, expected.size);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    // Kept in the part and resumed from, within send()'s retries, as after a dropped connection.
    if (state.written < expected.size) throw new BodyEndedShort(state.written, expected.size);
    return false;
  };

  for (;;) {
    try {
      while (state.written < expected.size && (await client.send(spec, consume, () => state.written)));
      const sha256 = state.hash.digest('hex');
      if (state.written !== expected.size || sha256 !== expected.sha256) {
        throw new IqpError(
          'IQP_E_DOWNLOAD_MISMATCH',
          `Downloaded ${state.written} bytes with SHA-256 ${sha256}; the registry announced ${expected.size} bytes with SHA-256 ${expected.sha256}.`,
          { size_bytes: state.written, sha256, expected_size_bytes: expected.size, expected_sha256: expected.sha256 },
        );
      }
      return { resumedFrom, restarted };
    } catch (err) {
      if (!partSuspect(err)) throw err;
      // A download from zero that fails these checks would fail the same way again; a resumed one may not.
      const resumed = resumedFrom > 0 || (err.details?.[BAD_RANGE] !== undefined && state.written > 0);
      if (restarted || !resumed) {
        await rm(partPath, { force: true });
        throw err;
      }
      hooks.onNote?.('The partial download does not match the pack; downloading it again from the start.');
      restarted = true;
      state = await truncate(partPath);
      target = registry;
    }
  }
}
