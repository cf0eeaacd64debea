// The primary of `iqp server start --workers 2` (startCluster from the build, dist/) for
// workers.test.ts, with one fault injected: Node's IPC to a worker failing, as it does when the
// cluster module (or a relayed plugin message) writes to a worker that has just died. The cluster
// module reports that as an 'error' event on the Worker. Prints one JSON line: what /v1/health
// answered afterwards and what the primary logged. Plain JS so it starts without a TypeScript loader.
import cluster from 'node:cluster';
import { startCluster } from '../../dist/server/cluster.js';
import { serverConfig } from '../../dist/server/config.js';

const logs = [];
const running = await startCluster(serverConfig({ dataDir: process.env.DATA_DIR, host: '127.0.0.1', port: 0 }), 2, (line) => logs.push(line));
const worker = Object.values(cluster.workers)[0];
worker.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' }));
const health = await fetch(`${running.url}/v1/health`);
process.stdout.write(`${JSON.stringify({ health: health.status, logs })}\n`);
await running.close();
