/** A worker thread that loads one part of a big data file into its own database (load.ts, loadInParts). */
import { parentPort, workerData } from 'node:worker_threads';
import { loadPart, type PartJob, type PartMessage } from './load-parts.js';

const port = parentPort!;
const send = (message: PartMessage): void => port.postMessage(message);

loadPart(workerData as PartJob, (rows) => send({ type: 'progress', rows })).then(
  (rows) => send({ type: 'done', rows }),
  (err: unknown) => send({ type: 'failed', reason: err instanceof Error ? err.message : String(err) }),
);
