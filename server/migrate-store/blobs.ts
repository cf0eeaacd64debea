/**
 * The blob part of a move: every blob a pack refers to, from the data directory's blobs/ to the
 * target store through its ordinary commit path (staged in tmp/, committed as an upload is). Each
 * is hashed on the way and must be the sha256 and size its packs say, then read back from the
 * target and hashed again. A blob the target already holds at the right size is skipped, so a
 * copy that was interrupted resumes where it stopped.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IqpError } from '../../src/errors.js';
import type { FsBlobStore } from '../stores/fs-blobs.js';
import type { BlobStore } from '../stores/types.js';
import type { BlobRef } from './source.js';

export interface BlobCopy {
  readonly referenced: number;
  readonly copied: number;
  readonly skipped: number;
  readonly bytes_copied: number;
  readonly bytes_total: number;
}

export interface BlobPlan {
  /** Already in the target at the right size. */
  readonly present: readonly BlobRef[];
  readonly missing: readonly BlobRef[];
}

export type BlobProgress = (done: number, total: number, ref: BlobRef, action: 'copied' | 'skipped') => void;

function damaged(ref: BlobRef, what: string): IqpError {
  return new IqpError('IQP_E_IO', `Blob ${ref.sha256} (of ${ref.pack}) in the data directory ${what}; the data directory is damaged.`, { sha256: ref.sha256, pack: ref.pack }, {
    hint: 'Restore the blob from a backup (`iqp server restore` into another directory, then copy blobs/sha256/…), then run migrate-store again: what was copied is kept.',
  });
}

/** Which blobs the target holds already and which it lacks; and that the source holds each it lacks, at its size. */
export async function planBlobs(refs: readonly BlobRef[], from: FsBlobStore, to: BlobStore): Promise<BlobPlan> {
  const present: BlobRef[] = [];
  const missing: BlobRef[] = [];
  for (const ref of refs) {
    if ((await to.size(ref.sha256)) === ref.size) {
      present.push(ref);
      continue;
    }
    const size = await from.size(ref.sha256);
    if (size === null) throw damaged(ref, 'is missing');
    if (size !== ref.size) throw damaged(ref, `has ${size} bytes, not ${ref.size}`);
    missing.push(ref);
  }
  return { present, missing };
}

async function sha256Of(stream: NodeJS.ReadableStream): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

async function copyOne(ref: BlobRef, from: FsBlobStore, to: BlobStore): Promise<void> {
  const staged = await to.stage();
  try {
    const hash = createHash('sha256');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    await pipeline(await from.read(ref.sha256), tap, createWriteStream(staged.path));
    const sha256 = hash.digest('hex');
    if (sha256 !== ref.sha256 || size !== ref.size) throw damaged(ref, `reads as ${size} bytes with sha256 ${sha256}`);
    await staged.commit(ref.sha256);
  } finally {
    await staged.abort();
  }
  const landed = await sha256Of(await to.read(ref.sha256));
  if (landed.sha256 !== ref.sha256 || landed.size !== ref.size) {
    throw new IqpError('IQP_E_UNAVAILABLE', `The blob store returns ${landed.size} bytes with sha256 ${landed.sha256} for blob ${ref.sha256} (of ${ref.pack}) just copied there.`, { sha256: ref.sha256, pack: ref.pack }, {
      hint: 'Check the blob store; run migrate-store again once it is sound (blobs it holds at the right size are skipped).',
    });
  }
}

/** Copies what `plan` found missing, one blob at a time; `progress` hears of each, skipped ones included. */
export async function copyBlobs(plan: BlobPlan, from: FsBlobStore, to: BlobStore, progress: BlobProgress): Promise<BlobCopy> {
  const total = plan.present.length + plan.missing.length;
  let done = 0;
  for (const ref of plan.present) progress(++done, total, ref, 'skipped');
  let bytes = 0;
  for (const ref of plan.missing) {
    await copyOne(ref, from, to);
    bytes += ref.size;
    progress(++done, total, ref, 'copied');
  }
  return { referenced: total, copied: plan.missing.length, skipped: plan.present.length, bytes_copied: bytes, bytes_total: [...plan.present, ...plan.missing].reduce((n, r) => n + r.size, 0) };
}

/** Every referenced blob in the target at its size; IQP_E_UNAVAILABLE naming the first that is not. */
export async function verifyBlobs(refs: readonly BlobRef[], to: BlobStore): Promise<void> {
  for (const ref of refs) {
    const size = await to.size(ref.sha256);
    if (size !== ref.size) {
      throw new IqpError('IQP_E_UNAVAILABLE', `The blob store holds ${size === null ? 'nothing' : `${size} bytes`} for blob ${ref.sha256} (of ${ref.pack}), which has ${ref.size}.`, { sha256: ref.sha256, pack: ref.pack });
    }
  }
}
