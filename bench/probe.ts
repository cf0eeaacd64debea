/**
 * In-process measurements that the CLI cannot report by itself, run in a child process by the
 * benchmarks so that each starts cold and with its own memory:
 *
 *   node dist/bench/probe.js build-phases <content.sqlite> <level>
 *   node dist/bench/probe.js verify-phases <pack.iqp> <key.pub>
 *   node dist/bench/probe.js parse <source dir>
 *   node dist/bench/probe.js load-phases <source dir>
 *   node dist/bench/probe.js levels <file> <level,level,…> <runs>
 *
 * Each prints one JSON document. The phases call the same library functions as iqp build/verify,
 * one at a time, so their shares of the total can be seen.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256File } from '../src/pack/build.js';
import { loadSource } from '../src/pack/load.js';
import { describeContent, startIntegrityCheck } from '../src/pack/content.js';
import { parsePublicKey } from '../src/pack/minisign.js';
import { readFileChunks, readPack } from '../src/pack/reader.js';
import { readCsv } from '../src/pack/rows-csv.js';
import { readJsonl } from '../src/pack/rows-jsonl.js';
import { readSource } from '../src/pack/source.js';
import { checkSignature } from '../src/pack/verify.js';
import { decompressTo, ZstdCompressor } from '../src/pack/zstd.js';

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

async function timed<T>(f: () => Promise<T> | T): Promise<[number, T]> {
  const t = now();
  const v = await f();
  return [now() - t, v];
}

async function compressFile(path: string, level: number, onChunk: (c: Buffer) => void): Promise<void> {
  const fh = await open(path, 'r');
  const buf = Buffer.allocUnsafe(1024 * 1024);
  const hash = createHash('sha256');
  const z = new ZstdCompressor(level, onChunk);
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      z.write(chunk);
    }
    z.end();
  } finally {
    await fh.close();
  }
}

async function buildPhases(db: string, level: number): Promise<unknown> {
  const [describe] = await timed(() => describeContent(db, { integrity: false }));
  const [integrity] = await timed(() => startIntegrityCheck(db, 'content').result);
  const [hash] = await timed(() => sha256File(db));
  let size = 0;
  const [compress] = await timed(() => compressFile(db, level, (c) => (size += c.length)));
  return { describe, integrity, hash, compressAndHash: compress, compressedBytes: size };
}

async function verifyPhases(pack: string, pub: string): Promise<unknown> {
  const dir = mkdtempSync(join(tmpdir(), 'iqp-bench-probe-'));
  try {
    const contentPath = join(dir, 'content.sqlite');
    const [read, contents] = await timed(() => readPack(readFileChunks(pack), { contentPath }));
    const key = parsePublicKey(readFileSync(pub, 'utf8'));
    const [signature] = await timed(() => checkSignature(contents, { trustedKeys: [key] }));
    const [describe] = await timed(() => describeContent(contentPath, { integrity: false }));
    const [integrity] = await timed(() => describeContent(contentPath, { integrity: true }));
    const [cleanup] = await timed(() => rmSync(dir, { recursive: true, force: true }));
    return { readAndSpill: read, signature, describe, integrityAndDescribe: integrity, integrity: integrity - describe, cleanup };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function parse(dir: string): Promise<unknown> {
  const source = await readSource(dir);
  let rows = 0;
  const [seconds] = await timed(async () => {
    for (const data of source.dataFiles) {
      const reader = data.format === 'csv' ? readCsv(data.path, data.file) : readJsonl(data.path, data.file);
      for await (const _row of reader) rows += 1;
    }
  });
  return { rows, seconds };
}

/** Names a SQL statement's kind for the load breakdown. */
function sqlKind(sql: string): string {
  const s = sql.trim().toUpperCase();
  if (/^CREATE\s+(UNIQUE\s+)?INDEX/.test(s)) return 'indexes';
  if (s.startsWith('VACUUM')) return 'vacuum';
  if (s.includes('INTEGRITY_CHECK')) return 'integrity';
  if (s.includes('FOREIGN_KEY_CHECK')) return 'foreignKeys';
  if (s.startsWith('COMMIT')) return 'commit';
  return 'otherSql';
}

/**
 * Times the SQL that the real loadSource runs, by wrapping better-sqlite3's exec and the
 * statements' all/get, and run for VACUUM INTO (inserts, also run, are too many to time one by
 * one). Reading, parsing and inserting the rows is the loader's own rowsSeconds.
 */
async function loadPhases(dir: string): Promise<unknown> {
  const spent: Record<string, number> = {};
  const add = (kind: string, t: number) => (spent[kind] = (spent[kind] ?? 0) + t);
  const dbProto = Database.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const exec = dbProto['exec']!;
  dbProto['exec'] = function (this: unknown, sql: unknown) {
    const t = now();
    try {
      return exec.call(this, sql);
    } finally {
      add(sqlKind(String(sql)), now() - t);
    }
  };
  const scratch = new Database(':memory:');
  const stmtProto = Object.getPrototypeOf(scratch.prepare('SELECT 1')) as Record<string, (...a: unknown[]) => unknown>;
  scratch.close();
  for (const method of ['all', 'get', 'run']) {
    const original = stmtProto[method]!;
    stmtProto[method] = function (this: { source: string }, ...a: unknown[]) {
      if (method === 'run' && !this.source.startsWith('VACUUM')) return original.apply(this, a);
      const t = now();
      try {
        return original.apply(this, a);
      } finally {
        add(sqlKind(this.source), now() - t);
      }
    };
  }
  const work = mkdtempSync(join(tmpdir(), 'iqp-bench-load-'));
  try {
    const source = await readSource(dir);
    const [total, loaded] = await timed(() => loadSource(source, join(work, 'content.sqlite')));
    const sql = Object.values(spent).reduce((a, b) => a + b, 0);
    return { rows: loaded.rows, loadSeconds: loaded.seconds, total, ...spent, rowsSeconds: loaded.rowsSeconds, rest: total - sql - loaded.rowsSeconds };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Window size from a zstd frame header: what a reader must allocate to decompress it. */
function windowBytes(frame: Buffer): number {
  const fhd = frame[4]!;
  const singleSegment = (fhd & 0x20) !== 0;
  if (singleSegment) {
    // The window is the content size; iqp streams, so its frames never take this branch.
    return Number.NaN;
  }
  const wd = frame[5]!;
  const base = 2 ** (10 + (wd >> 3));
  return base + (base / 8) * (wd & 7);
}

async function levels(file: string, list: number[], runs: number): Promise<unknown> {
  const input = readFileSync(file);
  const CHUNK = 1024 * 1024;
  const out: unknown[] = [];
  for (const level of list) {
    const compressTimes: number[] = [];
    const decompressTimes: number[] = [];
    let compressed: Buffer = Buffer.alloc(0);
    // Slow levels are measured once: minutes per run, and their spread is small next to that.
    const n = level >= 12 ? 1 : runs;
    for (let r = 0; r < n; r++) {
      const parts: Buffer[] = [];
      const [t] = await timed(() => {
        const z = new ZstdCompressor(level, (c) => parts.push(Buffer.from(c)));
        for (let off = 0; off < input.length; off += CHUNK) z.write(input.subarray(off, Math.min(input.length, off + CHUNK)));
        z.end();
      });
      compressTimes.push(t);
      compressed = Buffer.concat(parts);
    }
    for (let r = 0; r < Math.max(runs, 3); r++) {
      let total = 0;
      const [t] = await timed(() =>
        decompressTo(
          (async function* () {
            for (let off = 0; off < compressed.length; off += CHUNK) yield compressed.subarray(off, Math.min(compressed.length, off + CHUNK));
          })(),
          (c) => (total += c.length),
        ),
      );
      if (total !== input.length) throw new Error(`level ${level}: decompressed ${total} bytes, expected ${input.length}`);
      decompressTimes.push(t);
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    out.push({ level, bytes: input.length, compressedBytes: compressed.length, window: windowBytes(compressed), compressSeconds: median(compressTimes), decompressSeconds: median(decompressTimes), compressRuns: n });
    process.stderr.write(`  level ${level}: ${compressed.length} bytes, ${median(compressTimes).toFixed(2)} s\n`);
  }
  return out;
}

const [cmd, ...args] = process.argv.slice(2);
let result: unknown;
switch (cmd) {
  case 'build-phases':
    result = await buildPhases(args[0]!, Number(args[1]));
    break;
  case 'verify-phases':
    result = await verifyPhases(args[0]!, args[1]!);
    break;
  case 'parse':
    result = await parse(args[0]!);
    break;
  case 'load-phases':
    result = await loadPhases(args[0]!);
    break;
  case 'levels':
    result = await levels(args[0]!, args[1]!.split(',').map(Number), Number(args[2] ?? 3));
    break;
  default:
    process.stderr.write('usage: probe.js build-phases|verify-phases|parse|load-phases|levels …\n');
    process.exit(2);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
