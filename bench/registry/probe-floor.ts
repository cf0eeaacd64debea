/**
 * The floors under the registry's targets: a bare node:http server (no Express, no registry, no
 * store) in one process or in N cluster workers sharing the port as the registry's do:
 *
 *   node dist/bench/registry/probe-floor.js json <file> <processes>
 *       every GET answers the file's bytes from memory, with the headers of a cached answer;
 *   node dist/bench/registry/probe-floor.js ranges <file> <processes>
 *       every GET with `Range: bytes=a-b` answers 206 with those bytes, read from a descriptor kept
 *       open (the registry keeps its blobs' open too) into a fresh buffer.
 *
 * What it reaches is what Node's HTTP layer allows on this machine; the registry cannot beat it,
 * so it says how much of the gap to nginx is the registry's own work. It prints
 * {"url", "pid", "workers"} once every process listens, and serves until killed.
 */
import cluster from 'node:cluster';
import { createHash } from 'node:crypto';
import { fstatSync, openSync, read, readFileSync } from 'node:fs';
import { createServer, type RequestListener } from 'node:http';

const [mode, file, n] = process.argv.slice(2);
const processes = Number(n);
if ((mode !== 'json' && mode !== 'ranges') || !file || !Number.isInteger(processes) || processes < 1) {
  process.stderr.write('usage: probe-floor.js json|ranges <file> <processes>\n');
  process.exit(2);
}

function jsonListener(path: string): RequestListener {
  const body = readFileSync(path);
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return (req, res) => {
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { ETag: etag, 'Cache-Control': 'no-cache' });
      res.end();
      return;
    }
    res.writeHead(200, { ETag: etag, 'Cache-Control': 'no-cache', 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(body.length) });
    res.end(body);
  };
}

function rangesListener(path: string): RequestListener {
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  return (req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const end = m ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (!m || start > end || end - start + 1 > 16 * 1024 * 1024) {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` });
      res.end();
      return;
    }
    const buf = Buffer.allocUnsafe(end - start + 1);
    read(fd, buf, 0, buf.length, start, (err, got) => {
      if (err || got !== buf.length) {
        res.destroy();
        return;
      }
      res.writeHead(206, { 'Content-Type': 'application/vnd.iqp.pack+zstd', 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': String(buf.length), 'Accept-Ranges': 'bytes' });
      res.end(buf);
    });
  };
}

function serve(ready: (port: number) => void): void {
  const server = createServer(mode === 'json' ? jsonListener(file!) : rangesListener(file!));
  server.keepAliveTimeout = 65_000;
  // Port 0 in a cluster: the primary picks one port and every worker shares it.
  server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
}

if (processes === 1) {
  serve((port) => process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid, workers: [process.pid] })}\n`));
} else if (cluster.isPrimary) {
  let listening = 0;
  const workers = Array.from({ length: processes }, () => cluster.fork());
  cluster.on('listening', (_w, address) => {
    if (++listening === processes) process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${address.port}`, pid: process.pid, workers: workers.map((w) => w.process.pid) })}\n`);
  });
  process.on('SIGTERM', () => {
    for (const w of workers) w.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve(() => {});
}
