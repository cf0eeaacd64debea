/**
 * The registry app on N node:cluster workers sharing one port, for the benchmarks only:
 *
 *   node dist/bench/registry/cluster.js <data dir> <port> <workers>
 *
 * The primary holds the data directory's lock and runs recovery (migrations, the sweep of staged
 * uploads and unreferenced blobs) once, before any worker starts; each worker runs startServer on
 * the same directory with `lock: false` (SQLite in WAL mode is safe across processes; blobs are
 * immutable files). Prints {"url", "pid", "workers": [pids]} once all listen; SIGTERM stops all.
 *
 * Not a deployment recipe as it stands: each worker has its own JsonCache (a publish handled by one
 * worker would not invalidate the others' cached bodies) and its own Prometheus registry (/metrics
 * would show one worker's counters). See docs/performance.md (Registry).
 */
import cluster from 'node:cluster';
import { serverConfig } from '../../server/config.js';
import { recoverDataDir } from '../../server/datadir.js';
import { lockDataDir } from '../../server/lock.js';
import { startServer } from '../../server/start.js';

const [dataDir, portArg, workersArg] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(workersArg ?? 2);

if (cluster.isPrimary) {
  if (!dataDir || !Number.isInteger(port) || port <= 0) {
    process.stderr.write('usage: cluster.js <data dir> <port> <workers>\n');
    process.exit(2);
  }
  // Held until this process exits; the workers serve beside it without it.
  const lock = lockDataDir(dataDir, 'bench cluster primary');
  process.once('exit', () => lock.release());
  await (await recoverDataDir(lock)).stores.meta.close();
  const pids: number[] = [];
  for (let i = 0; i < count; i++) {
    const worker = cluster.fork();
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (m: unknown) => (m === 'listening' ? resolve() : reject(new Error(String(m)))));
      worker.once('exit', (code) => reject(new Error(`worker exited (${code}) before listening`)));
    });
    pids.push(worker.process.pid!);
  }
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid, workers: pids })}\n`);
  process.once('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    setTimeout(() => process.exit(0), 200).unref();
  });
} else {
  const running = await startServer(serverConfig({ dataDir: dataDir!, host: '127.0.0.1', port }), () => {}, { lock: false });
  process.send!('listening');
  process.once('SIGTERM', () => void running.close().then(() => process.exit(0)));
}
