/**
 * zstd over the native binding's streaming contexts. zstd-napi's Transform streams push a whole
 * input chunk's output at once, which lets a decompression bomb fill memory before anyone can
 * object; here output is handed over in fixed-size pieces and the consumer can stop at any time.
 */
import binding from 'zstd-napi/binding.js';
import { IqpError } from '../errors.js';
import { ZSTD_WINDOW_LOG_BUILD, ZSTD_WINDOW_LOG_MAX } from './format.js';
import { defaultThreads } from './threads.js';

const OUT_SIZE = 256 * 1024;
/** The first level whose window (for inputs over 256 KiB) is 8 MiB in libzstd's parameter table. */
const ZSTD_FIRST_8MIB_LEVEL = 17;

function compressionError(err: unknown): IqpError {
  const reason = err instanceof Error ? err.message : String(err);
  return new IqpError('IQP_E_PACK_COMPRESSION', `The pack is not valid zstd data: ${reason}.`);
}

/**
 * Decompresses `source`, calling `onData` synchronously with each piece of output. The buffer
 * passed to `onData` is reused afterwards: copy what must outlive the call.
 */
export async function decompressTo(
  source: AsyncIterable<Buffer>,
  onData: (chunk: Buffer) => void,
): Promise<{ compressedBytes: number }> {
  const dctx = new binding.DCtx();
  dctx.setParameter(binding.DParameter.windowLogMax, ZSTD_WINDOW_LOG_MAX);
  const out = Buffer.allocUnsafe(OUT_SIZE);
  let compressedBytes = 0;
  let inFrame = false;
  let sawInput = false;
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    sawInput = true;
    compressedBytes += chunk.length;
    let src = chunk;
    for (;;) {
      let ret: number;
      let produced: number;
      let consumed: number;
      try {
        [ret, produced, consumed] = dctx.decompressStream(out, src);
      } catch (err) {
        throw compressionError(err);
      }
      if (produced > 0) onData(out.subarray(0, produced));
      // Only a call that moved tells where the stream is: once a frame has ended (ret 0), one more
      // call without input answers the size of the next frame's header, and a frame whose output
      // ends exactly at the end of `out` is followed by just such a call.
      if (produced > 0 || consumed > 0) inFrame = ret !== 0;
      src = src.subarray(consumed);
      // More output may be pending inside zstd even when all input is consumed.
      if (src.length === 0 && produced < out.length) break;
    }
  }
  if (!sawInput) throw new IqpError('IQP_E_PACK_COMPRESSION', 'The pack is empty.');
  if (inFrame) throw new IqpError('IQP_E_PACK_COMPRESSION', 'The zstd stream is truncated (it ends inside a frame).');
  return { compressedBytes };
}

/**
 * A streaming compressor that writes one zstd frame with a content checksum.
 *
 * It always runs libzstd's multithreaded mode (at least one worker thread): the calling thread
 * reads, hashes and writes while workers compress, and the output is the same for any number of
 * workers (libzstd guarantees it for streaming compression), so a pack is byte-identical whether
 * it is built on one core or many. Single-threaded mode (0 workers) would give other bytes.
 */
export class ZstdCompressor {
  readonly #cctx = new binding.CCtx();
  readonly #out = Buffer.allocUnsafe(OUT_SIZE);

  /** `sink` is called synchronously and must not keep the buffer it is given. */
  constructor(
    level: number,
    private readonly sink: (chunk: Buffer) => void,
    options: { readonly workers?: number } = {},
  ) {
    const workers = options.workers ?? defaultThreads();
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be an integer ≥ 1, not ${workers}`);
    this.#cctx.setParameter(binding.CParameter.compressionLevel, level);
    this.#cctx.setParameter(binding.CParameter.checksumFlag, 1);
    this.#cctx.setParameter(binding.CParameter.nbWorkers, workers);
    // Levels 1-16 use windows of at most 4 MiB, 17-19 of 8 MiB: those are capped at 4 MiB
    // (ZSTD_WINDOW_LOG_BUILD). Setting the window only where it lowers it leaves the other
    // levels' output as it was. The level range is checked by callers.
    if (level >= ZSTD_FIRST_8MIB_LEVEL) this.#cctx.setParameter(binding.CParameter.windowLog, ZSTD_WINDOW_LOG_BUILD);
  }

  write(chunk: Buffer): void {
    this.#run(chunk, binding.EndDirective.continue);
  }

  end(): void {
    this.#run(Buffer.alloc(0), binding.EndDirective.end);
  }

  #run(chunk: Buffer, directive: binding.EndDirective): void {
    let src = chunk;
    for (;;) {
      const [ret, produced, consumed] = this.#cctx.compressStream2(this.#out, src, directive);
      if (produced > 0) this.sink(this.#out.subarray(0, produced));
      src = src.subarray(consumed);
      if (src.length === 0 && (directive === binding.EndDirective.continue || ret === 0)) return;
    }
  }
}
