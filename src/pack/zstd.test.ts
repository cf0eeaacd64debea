import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { defaultThreads, MAX_THREADS } from './threads.js';
import { decompressTo, ZstdCompressor } from './zstd.js';

/** Compressible, deterministic, not trivially repetitive: words from a xorshift generator. */
function sampleText(bytes: number): Buffer {
  const words = ['qul', 'huwa', 'allahu', 'ahad', 'card', 'deck', 'oats', 'protein', 'squat', 'recite', 'ayah', 'surah', '1,204', 'kcal'];
  const out = Buffer.allocUnsafe(bytes);
  let x = 0x9e3779b9;
  let at = 0;
  while (at < bytes) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    at += out.write(`${words[(x >>> 0) % words.length]}${(x & 7) === 0 ? '\n' : ' '}`, at);
  }
  return out;
}

function compress(data: Buffer, level: number, workers: number, pieceSize: number): Buffer {
  const parts: Buffer[] = [];
  const z = new ZstdCompressor(level, (c) => parts.push(Buffer.from(c)), { workers });
  for (let at = 0; at < data.length; at += pieceSize) z.write(data.subarray(at, at + pieceSize));
  z.end();
  return Buffer.concat(parts);
}

async function decompress(frame: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  await decompressTo(
    (async function* () {
      yield frame;
    })(),
    (c) => parts.push(Buffer.from(c)),
  );
  return Buffer.concat(parts);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('ZstdCompressor', () => {
  // 20 MiB at level 6 spans several of libzstd's multithreading jobs (8 MiB each at this level).
  const data = sampleText(20 * 1024 ** 2);

  it('writes the same bytes for any number of workers and any input piece size (reproducible packs)', async () => {
    const reference = compress(data, 6, 1, 1024 ** 2);
    expect(reference.length).toBeLessThan(data.length / 3);
    for (const [workers, piece] of [
      [2, 1024 ** 2],
      [3, 64 * 1024],
      [1, 777_777],
    ] as const) {
      expect(sha(compress(data, 6, workers, piece)), `${workers} workers, ${piece}-byte pieces`).toBe(sha(reference));
    }
    expect(sha(await decompress(reference))).toBe(sha(data));
  });

  it('writes one frame that the zstd command line decodes and checks (content checksum)', () => {
    const frame = compress(data.subarray(0, 3 * 1024 ** 2), 3, 2, 256 * 1024);
    // Frame header descriptor (byte 4): bit 2 is the content-checksum flag.
    expect(frame.readUInt32LE(0)).toBe(0xfd2fb528);
    expect(frame[4]! & 0x04).toBe(0x04);
    const r = spawnSync('zstd', ['-dc', '-q'], { input: frame, maxBuffer: 64 * 1024 ** 2 });
    expect(r.status, r.stderr?.toString()).toBe(0);
    expect(sha(r.stdout)).toBe(sha(data.subarray(0, 3 * 1024 ** 2)));
    expect(spawnSync('zstd', ['-lv', '-'], { input: frame }).status).not.toBeNull();
  });

  it('decodes a frame whose output ends exactly at the end of an output piece (256 KiB), and still reports a truncated one', async () => {
    for (const size of [256 * 1024, 4 * 256 * 1024]) {
      const frame = compress(data.subarray(0, size), 6, 1, 64 * 1024);
      expect(sha(await decompress(frame)), `${size} bytes`).toBe(sha(data.subarray(0, size)));
      await expect(decompress(frame.subarray(0, frame.length - 1)), `${size} bytes less one`).rejects.toMatchObject({ code: 'IQP_E_PACK_COMPRESSION' });
    }
  });

  it('keeps the window at 4 MiB at every level (17-19 would take 8 MiB): the frame header says so, and zstd decodes it with --memory=4MB', async () => {
    const input = data.subarray(0, 1024 * 1024);
    for (const level of [6, 16, 17, 19]) {
      const frame = compress(input, level, 1, 256 * 1024);
      // Frame header: magic, descriptor (no single-segment flag when the size is not given
      // up front), then the window descriptor: log2 of the window is 10 + its top five bits.
      expect(frame[4]! & 0x20, `level ${level}: single-segment frame`).toBe(0);
      const windowLog = 10 + (frame[5]! >> 3);
      expect(windowLog, `level ${level}`).toBeLessThanOrEqual(22);
      const z = spawnSync('zstd', ['-dc', '--memory=4MB'], { input: frame, maxBuffer: 8 * 1024 * 1024 });
      expect(z.status, `level ${level}: ${z.stderr}`).toBe(0);
      expect(sha(z.stdout)).toBe(sha(input));
    }
  });

  it('uses one worker per core by default, at least one and at most MAX_THREADS', () => {
    const w = defaultThreads();
    expect(w).toBeGreaterThanOrEqual(1);
    expect(w).toBeLessThanOrEqual(MAX_THREADS);
    expect(() => new ZstdCompressor(3, () => {}, { workers: 0 })).toThrow(RangeError);
  });
});
