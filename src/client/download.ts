/**
 * A resumable download into a `.part` file. A part left by an earlier run is continued with
 * `Range: bytes=<size>-` and `If-Range: "<sha256>"`, so the registry sends the rest only if the
 * file is still the one the part came from (206), and the whole file otherwise (200). The size and
 * SHA-256 are checked against what the registry announced; a resumed download that fails the check
 * is downloaded once more from zero before giving up, since the old part may be what was wrong.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rm, stat } from 'node:fs/promises';
import { IqpError } from '../errors.js';
import { readFileChunks } from '../pack/reader.js';
import type { RegistryClient, RequestSpec, Response } from './registry.js';

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

function contentRangeStart(res: Response, expected: Expected): number {
  const header = res.headers['content-range'];
  const m = typeof header === 'string' ? /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header.trim()) : null;
  if (!m || Number(m[3]) !== expected.size) {
    throw new IqpError('IQP_E_REGISTRY', `The registry answered 206 with Content-Range ${JSON.stringify(header)}; expected bytes N-${expected.size - 1}/${expected.size}.`);
  }
  return Number(m[1]);
}

export async function downloadResumable(client: RegistryClient, url: string, partPath: string, expected: Expected, hooks: DownloadHooks = {}): Promise<DownloadResult> {
  const resumedFrom = await partSize(partPath);
  let state = resumedFrom > expected.size ? await truncate(partPath) : await hashExisting(partPath, resumedFrom);
  if (resumedFrom > expected.size) hooks.onNote?.(`The partial download is larger than the pack (${resumedFrom} > ${expected.size} bytes); starting again.`);
  else if (resumedFrom === expected.size) hooks.onNote?.('A complete partial download is already there; checking it.');
  else if (resumedFrom > 0) hooks.onNote?.(`Resuming from byte ${resumedFrom} of ${expected.size}.`);
  let restarted = resumedFrom > expected.size;

  const spec = (): RequestSpec => ({
    method: 'GET',
    path: url,
    headers: {
      accept: 'application/vnd.iqp.pack+zstd, application/octet-stream',
      ...(state.written > 0 ? { range: `bytes=${state.written}-`, 'if-range': `"${expected.sha256}"` } : {}),
    },
    expect: [200, 206, 416],
  });

  const consume = async (res: Response): Promise<void> => {
    if (res.statusCode === 416) {
      // The registry thinks our part reaches past the end: the file is not what we think it is.
      await res.body.dump();
      throw new IqpError('IQP_E_RANGE_NOT_SATISFIABLE', `The registry refused to resume from byte ${state.written}.`);
    }
    if (res.statusCode === 200) {
      if (state.written > 0) hooks.onNote?.('The registry sent the whole file (the pack changed, or it ignored the range); starting again.');
      state = await truncate(partPath);
    } else if (contentRangeStart(res, expected) !== state.written) {
      throw new IqpError('IQP_E_REGISTRY', `The registry resumed from the wrong byte (asked for ${state.written}).`);
    }
    const fh = await open(partPath, 'a');
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
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
  };

  for (;;) {
    try {
      if (state.written < expected.size) await client.send(spec, consume, () => state.written);
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
      const retryFromZero =
        !restarted && resumedFrom > 0 && err instanceof IqpError && (err.code === 'IQP_E_DOWNLOAD_MISMATCH' || err.code === 'IQP_E_RANGE_NOT_SATISFIABLE');
      if (!retryFromZero) {
        if (err instanceof IqpError && (err.code === 'IQP_E_DOWNLOAD_MISMATCH' || err.code === 'IQP_E_RANGE_NOT_SATISFIABLE')) await rm(partPath, { force: true });
        throw err;
      }
      hooks.onNote?.('The partial download does not match the pack; downloading it again from the start.');
      restarted = true;
      state = await truncate(partPath);
    }
  }
}
