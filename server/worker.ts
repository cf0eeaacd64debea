/**
 * One worker of `iqp server start --workers N` (server/cluster.ts forks this file): a whole
 * registry on the data directory its primary recovered, without the lock, on the primary's port,
 * running the plugins of the server.json its primary read at start (asked for over IPC).
 *
 * It stops when the primary says so (finishing its requests first), when it gets SIGTERM (the
 * primary then starts another), or at once when the primary is gone. SIGINT is the primary's to
 * act on: a Ctrl-C at a terminal reaches every process of the group, and the workers must finish
 * their requests rather than drop them.
 */
import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { failedMessage, type PrimaryMessage, WORKER_CONFIG_ENV, type WorkerMessage } from './cluster.js';
import type { ServerConfig } from './config.js';
import type { ServerFile } from './plugins/server-file.js';
import { workerPeers } from './plugins/peers.js';
import { type RunningServer, startServer } from './start.js';

if (!cluster.isWorker || !process.send) {
  process.stderr.write('server/worker.js is started by `iqp server start --workers N`, not by hand\n');
  process.exit(2);
}

const send = (m: WorkerMessage) => process.connected && process.send!(m);
const workerId = cluster.worker!.id;
const log = (line: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), worker: workerId, pid: process.pid, ...line })}\n`);

/** /metrics on any worker: every worker's registry, summed by the primary (prom-client's cluster protocol). */
const pending = new Map<number, { resolve(text: string): void; reject(err: Error): void }>();
let nextId = 0;
const gatherMetrics = () =>
  new Promise<string>((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    send({ type: 'iqp:metrics', id });
  });

/** server.json as the primary read it at start: every worker, a replacement too, runs the same plugins and config. */
let gotServerFile: (file: ServerFile) => void = () => {};
const serverFile = new Promise<ServerFile>((resolve) => {
  gotServerFile = resolve;
});

let running: RunningServer | null = null;
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await running?.close();
  process.exit(0);
};

process.on('message', (m: PrimaryMessage) => {
  if (m?.type === 'iqp:stop') void stop();
  else if (m?.type === 'iqp:server-file') gotServerFile(m.file);
  else if (m?.type === 'iqp:metrics') {
    const waiting = pending.get(m.id);
    pending.delete(m.id);
    if (m.text !== undefined) waiting?.resolve(m.text);
    else waiting?.reject(new Error(`metrics from the other workers: ${m.error ?? 'no answer'}`));
  }
});
process.on('SIGINT', () => {});
process.on('SIGTERM', () => void stop());

try {
  const config = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? '') as ServerConfig;
  send({ type: 'iqp:server-file' });
  running = await startServer(config, log, { lock: false, gatherMetrics, peers: workerPeers(), serverFile: await serverFile });
  // Answers the primary's requests for this worker's counters (the aggregator's constructor installs the listener).
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([running.registry.metrics.registry]);
  const port = Number(new URL(running.url).port);
  send({ type: 'iqp:listening', url: running.url, port, plugins: running.plugins?.status() ?? { loaded: [], failed: [] } });
} catch (err) {
  // Exits once the message is out (the primary reports it as the start's failure).
  process.send(failedMessage(err), undefined, {}, () => process.exit(1));
}
