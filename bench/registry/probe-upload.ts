/**
 * Where a pack upload's time goes, one part at a time, in a fresh process (library calls from
 * src/pack, the same ones PUT /v1/admin/packs makes):
 *
 *   node dist/bench/registry/probe-upload.js phases <pack.iqp> <scratch dir>
 *   node dist/bench/registry/probe-upload.js sink
 *
 * `phases` prints one JSON document of seconds: sha256 of the archive alone, zstd decompression
 * alone, readPack (decompress + tar + SHA-256 of the archive and of every entry) without and with
 * the spilled copy of content.sqlite, PRAGMA integrity_check on that copy, and writing the archive
 * to a staged file in 64 KiB pieces (what a socket delivers) followed by fsync.
 *
 * `sink` is a bare node:http server that reads a request body and throws it away: the ceiling of
 * receiving an upload over loopback in one Node process. It prints {"url": …} and serves until killed.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { describeContent } from '../../src/pack/content.js';
import { readFileChunks, readPack } from '../../src/pack/reader.js';
import { decompressTo } from '../../src/pack/zstd.js';

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

async function timed(f: () => Promise<unknown> | unknown): Promise<number> {
  const t = now();
  await f();
  return now() - t;
}

async function phases(pack: string, scratch: string): Promise<Record<string, number>> {
  mkdirSync(scratch, { recursive: true });
  const content = join(scratch, 'content.sqlite');
  const staged = join(scratch, 'staged.iqp');
  const out: Record<string, number> = { bytes: statSync(pack).size };
  // Warm the page cache so every phase reads from memory, as the server reads from the socket.
  for await (const _ of readFileChunks(pack));
  out['sha256'] = await timed(async () => {
    const h = createHash('sha256');
    for await (const c of readFileChunks(pack)) h.update(c);
    h.digest();
  });
  out['decompress'] = await timed(() => decompressTo(readFileChunks(pack), () => {}));
  out['readPack'] = await timed(() => readPack(readFileChunks(pack)));
  out['readPackSpill'] = await timed(() => readPack(readFileChunks(pack), { contentPath: content }));
  out['integrityCheck'] = await timed(() => describeContent(content, { integrity: true }));
  out['describeOnly'] = await timed(() => describeContent(content, { integrity: false }));
  rmSync(content, { force: true });
  out['stageWrite'] = await timed(async () => {
    const fh = await open(staged, 'w');
    try {
      for await (const c of readFileChunks(pack)) {
        for (let off = 0; off < c.length; off += 65536) await fh.write(c, off, Math.min(65536, c.length - off));
      }
    } finally {
      await fh.close();
    }
  });
  out['fsync'] = await timed(async () => {
    const fh = await open(staged, 'r+');
    await fh.sync();
    await fh.close();
  });
  rmSync(staged, { force: true });
  return out;
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'phases') {
  process.stdout.write(`${JSON.stringify(await phases(args[0]!, args[1]!))}\n`);
} else if (cmd === 'sink') {
  const server = createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(JSON.stringify({ bytes: n })));
  });
  server.requestTimeout = 0;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/`, pid: process.pid })}\n`);
  });
} else {
  process.stderr.write('usage: probe-upload.js phases <pack.iqp> <scratch dir> | sink\n');
  process.exit(2);
}
