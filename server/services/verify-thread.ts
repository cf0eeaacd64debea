/**
 * Verifies an upload on a thread of its own (verify-worker.ts), fed the upload's bytes as they
 * arrive. At most IN_FLIGHT bytes are on their way to the thread at any time: the request waits
 * for acknowledgements, so a client that sends faster than the pack can be checked fills neither
 * memory nor the event loop.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { trackTemp } from '../../src/atomic.js';
import { type ErrorCode, IqpError } from '../../src/errors.js';
import { ENTRY, type Limits } from '../../src/pack/format.js';
import type { VerifyReport } from '../../src/pack/verify.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import type { FromWorker, ToWorker, VerifyJob } from './verify-messages.js';

/** 4 MiB: enough to keep the thread busy between socket reads, small next to a pack. */
const IN_FLIGHT = 4 * 1024 * 1024;

/** The compiled worker beside this file (dist/), or, when this runs from the TypeScript sources (tests), the one in dist/. */
function workerUrl(): URL {
  const here = new URL('./verify-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = join(PACKAGE_ROOT, 'dist', 'server', 'services', 'verify-worker.js');
  if (!existsSync(built)) throw new IqpError('IQP_E_INTERNAL', `The upload verification thread ${built} is missing; run npm run build.`);
  return pathToFileURL(built);
}

export interface ThreadVerifyOptions {
  readonly publicKeys: readonly string[];
  readonly limits: Limits;
  readonly maxCompressionRatio: number;
  /** The staged copy `source` writes as it is read; complete once `source` has ended. */
  readonly stagedPath: string;
  /** Parent of the temporary directory for content.sqlite. */
  readonly tmpDir: string;
}

export async function verifyOnThread(source: AsyncIterable<Buffer>, options: ThreadVerifyOptions): Promise<VerifyReport> {
  const dir = await mkdtemp(join(options.tmpDir, 'iqp-verify-')).catch((err: NodeJS.ErrnoException) => {
    throw new IqpError('IQP_E_IO', `Cannot create a temporary directory in ${options.tmpDir} (${err.code ?? err.message}).`);
  });
  const untrack = trackTemp(dir);
  const { Worker } = await import('node:worker_threads');
  const job: VerifyJob = {
    publicKeys: options.publicKeys,
    limits: options.limits,
    maxCompressionRatio: options.maxCompressionRatio,
    stagedPath: options.stagedPath,
    contentPath: join(dir, ENTRY.content),
  };
  const worker = new Worker(workerUrl(), { workerData: job });
  let inFlight = 0;
  let drained: (() => void) | null = null;
  const outcome = new Promise<VerifyReport>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'consumed') {
        inFlight -= m.bytes;
        if (inFlight <= IN_FLIGHT) drained?.();
      } else if (m.type === 'done') {
        resolve({ ...m.report, manifestBytes: Buffer.from(m.report.manifestBytes) });
      } else {
        reject(new IqpError(m.error.code as ErrorCode, m.error.message, m.error.details, { hint: m.error.hint }));
      }
    });
    worker.once('error', (err) => reject(new IqpError('IQP_E_INTERNAL', `The upload verification thread failed: ${err.message}`)));
    worker.once('exit', (code) => reject(new IqpError('IQP_E_INTERNAL', `The upload verification thread stopped (exit code ${code}).`)));
  });
  // An early answer (the pack is refused) must stop the feeding below at its next wait.
  const settled = outcome.then(
    () => undefined,
    () => undefined,
  );
  const post = (m: ToWorker): void => worker.postMessage(m);
  let ended = false;
  try {
    for await (const chunk of source) {
      // Copied by postMessage: the request's chunk is still waiting to be written to the staged file.
      post({ type: 'chunk', chunk });
      inFlight += chunk.length;
      if (inFlight > IN_FLIGHT) await Promise.race([new Promise<void>((resolve) => (drained = resolve)), settled]);
      drained = null;
      if (await isSettled(settled)) break; // refused already: read no more of the upload
    }
    post({ type: 'end' });
    ended = true;
    return await outcome;
  } finally {
    if (!ended) post({ type: 'abort' }); // the upload failed or stopped: the thread stops reading
    await settled;
    await worker.terminate();
    await rm(dir, { recursive: true, force: true });
    untrack();
  }
}

async function isSettled(p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  return (await Promise.race([p.then(() => true), Promise.resolve(marker)])) === true;
}
