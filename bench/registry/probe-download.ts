/**
 * A bare node:http server that sends one file in different ways, to see which lever moves full
 * download throughput (no Express, no registry: only the read and write strategy differs):
 *
 *   node dist/bench/registry/probe-download.js <file> <strategy> <read size in KiB>
 *
 * strategies:
 *   stream    fs.createReadStream({ highWaterMark }) piped to the response (what fs-blobs.ts did)
 *   sendfile  Express's res.sendFile (the `send` package: 64 KiB stream reads)
 *   readahead a read loop that keeps the next read in flight while the previous chunk is written
 *             (fresh buffers, so no page faults saved, but reads and socket writes overlap)
 *   pool      the same with a fixed ring of reused buffers (no allocation, no page faults)
 *
 * It prints {"url": …} once listening, and serves until killed.
 */
import express from 'express';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';

const [file, strategy, kib] = process.argv.slice(2);
if (!file || !strategy || !kib) {
  process.stderr.write('usage: probe-download.js <file> stream|sendfile|readahead|pool <read KiB>\n');
  process.exit(2);
}
const readSize = Number(kib) * 1024;

function write(res: ServerResponse, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => res.write(buf, (err) => (err ? reject(err) : resolve())));
}

async function readAhead(path: string, res: ServerResponse, pooled: boolean, depth = 3): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const ring = pooled ? Array.from({ length: depth }, () => Buffer.allocUnsafe(readSize)) : [];
    const writes: Promise<void>[] = [];
    // Chunk i goes through slot i % depth: before its buffer is read into again, the write that
    // used it (depth - 1 chunks ago) must have completed, which also bounds memory (backpressure).
    for (let i = 0, pos = 0; pos < size; i++) {
      const s = i % depth;
      await writes[s];
      const buf = pooled ? ring[s]! : Buffer.allocUnsafe(readSize);
      const { bytesRead } = await fh.read(buf, 0, Math.min(readSize, size - pos), pos);
      if (bytesRead === 0) throw new Error('file shrank');
      pos += bytesRead;
      writes[s] = write(res, buf.subarray(0, bytesRead));
      writes[s]!.catch(() => {});
    }
    await Promise.all(writes);
    res.end();
  } finally {
    await fh.close();
  }
}

const app = express();
app.get("/file", (_req, res) => res.sendFile(resolve(file), { acceptRanges: true, etag: false, lastModified: false }));

const server = createServer((req, res) => {
  if (strategy === 'sendfile') return app(req as never, res as never);
  void (async () => {
    const fh = await open(file, 'r');
    const { size } = await fh.stat();
    await fh.close();
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', size);
    res.statusCode = 200;
    if (strategy === 'stream') await pipeline(createReadStream(file, { highWaterMark: readSize }), res);
    else await readAhead(file, res, strategy === 'pool');
  })().catch((err: Error) => {
    process.stderr.write(`${err.stack}\n`);
    res.destroy(err);
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/file`, pid: process.pid })}\n`);
});
