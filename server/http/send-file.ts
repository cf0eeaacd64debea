/**
 * Sending a byte range of an open file as a response body, faster than piping fs.createReadStream:
 *
 * - a range that fits one read (a resumable client's 64 KiB block) is one positional read and one
 *   res.end(buffer), with no stream machinery (pipeline, AbortSignal, end-of-stream listeners);
 * - a larger range is read through a small ring of reused buffers, the next read in flight while
 *   the previous chunk is written to the socket. A read stream piped to a response does neither:
 *   each chunk is a fresh buffer (allocation and page faults on every MiB), and since a 1 MiB chunk
 *   exceeds the socket's 16 KiB high-water mark, the stream pauses until the socket drains before
 *   it starts the next read, so reading and sending take turns instead of overlapping.
 *
 * See docs/performance.md (Registry) for the measurements behind CHUNK and DEPTH.
 */
import type { ServerResponse } from 'node:http';
import type { BlobFile } from '../stores/fs-blobs.js';

/** Bytes per read (and per socket write). */
export const CHUNK = 1024 * 1024;
/** Buffers in the ring: one being read into, the others being written. */
const DEPTH = 3;

/**
 * Small ranges are read into reused buffers, returned when the response has been handed to the
 * socket ('finish'): a fresh 64 KiB buffer per request is garbage the collector has to chase, which
 * costs about a tenth of the CPU of a range request.
 */
const SMALL = 64 * 1024;
const POOL_MAX = 64;
const pool: Buffer[] = [];

function release(buf: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(buf);
}

async function readFully(fh: Pick<BlobFile, 'read'>, buf: Buffer, length: number, position: number): Promise<void> {
  let got = 0;
  while (got < length) {
    const bytesRead = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) throw new Error(`the file ends at ${position + got}, before the ${length} bytes from ${position} its record promises`);
    got += bytesRead;
  }
}

/**
 * Writes bytes [start, end] of `fh` as the body of `res` and ends the response. Resolves true when
 * everything was handed to the socket, false when the client went away first; rejects on a read
 * error (the response may then be half sent: the caller destroys it). Does not close `fh`, whose
 * reads are all complete when this settles.
 */
export async function sendFileRange(fh: Pick<BlobFile, 'read'>, res: ServerResponse, start: number, end: number): Promise<boolean> {
  const length = end - start + 1;
  if (length <= SMALL) {
    const buf = pool.pop() ?? Buffer.allocUnsafeSlow(SMALL);
    try {
      await readFully(fh, buf, length, start);
    } catch (err) {
      release(buf);
      throw err;
    }
    if (res.destroyed) {
      release(buf);
      return false;
    }
    // The callback runs on 'finish', once the bytes are with the kernel (never, if the client goes
    // away first: the buffer is then left to the garbage collector).
    res.end(buf.subarray(0, length), () => release(buf));
    return true;
  }
  if (length <= CHUNK) {
    const buf = Buffer.allocUnsafe(length);
    await readFully(fh, buf, length, start);
    if (res.destroyed) return false;
    res.end(buf);
    return true;
  }
  let closed = res.destroyed;
  let wake: (() => void) | null = null;
  const onClose = () => {
    closed = true;
    wake?.();
  };
  res.once('close', onClose);
  try {
    const ring = Array.from({ length: DEPTH }, () => Buffer.allocUnsafe(CHUNK));
    // writing[i]: the write of ring[i] still in flight, settled by its callback or by 'close'.
    const writing: (Promise<void> | null)[] = new Array(DEPTH).fill(null);
    const write = (chunk: Buffer) =>
      new Promise<void>((resolve) => {
        res.write(chunk, () => resolve());
      });
    const settled = (p: Promise<void>) =>
      closed
        ? Promise.resolve()
        : Promise.race([
            p,
            new Promise<void>((resolve) => {
              wake = resolve;
            }),
          ]);
    let position = start;
    for (let i = 0; position <= end; i = (i + 1) % DEPTH) {
      // ring[i] is free again once the write that used it DEPTH chunks ago is done; that wait is
      // also the backpressure: at most DEPTH - 1 chunks are queued on the socket.
      const previous = writing[i];
      if (previous) await settled(previous);
      if (closed) return false;
      const n = Math.min(CHUNK, end + 1 - position);
      await readFully(fh, ring[i]!, n, position);
      if (closed) return false;
      position += n;
      writing[i] = write(ring[i]!.subarray(0, n));
    }
    for (const w of writing) if (w) await settled(w);
    if (closed) return false;
    res.end();
    return true;
  } finally {
    res.off('close', onClose);
  }
}
