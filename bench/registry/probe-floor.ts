/**
 * The floor under the cached-JSON target: a bare node:http server (no Express, no registry, no
 * store) answering every GET with the same bytes and the headers the registry sends for a cached
 * answer, in one process or in N cluster workers sharing the port as the registry's do:
 *
 *   node dist/bench/registry/probe-json.js <file> <processes>
 *
 * What it reaches is what Node's HTTP layer allows on this machine; the registry cannot beat it,
 * so it says how much of the gap to nginx is the registry's own work. It prints
 * {"url", "pid", "workers"} once every process listens, and serves until killed.
 */
import cluster from 'node:cluster';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [file, n] = process.argv.slice(2);
const processes = Number(n);
if (!file || !Number.isInteger(processes) || processes < 1) {
  process.stderr.write('usage: probe-json.js <file> <processes>\n');
  process.exit(2);
}
const body = readFileSync(file);
const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;

function serve(port: number, ready: (port: number) => void): void {
  const server = createServer((req, res) => {
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { ETag: etag, 'Cache-Control': 'no-cache' });
      res.end();
      return;
    }
    res.writeHead(200, { ETag: etag, 'Cache-Control': 'no-cache', 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(body.length) });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1', () => ready((server.address() as { port: number }).port));
}

if (processes === 1) {
  serve(0, (port) => process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid, workers: [process.pid] })}\n`));
} else if (cluster.isPrimary) {
  // Port 0 in a cluster: the primary picks one port and every worker shares it.
  let listening = 0;
  let url = '';
  const workers = Array.from({ length: processes }, () => cluster.fork());
  cluster.on('listening', (_w, address) => {
    url = `http://127.0.0.1:${address.port}`;
    if (++listening === processes) process.stdout.write(`${JSON.stringify({ url, pid: process.pid, workers: workers.map((w) => w.process.pid) })}\n`);
  });
  process.on('SIGTERM', () => {
    for (const w of workers) w.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve(0, () => {});
}
