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
  /** The pack's manifest.json.minisig sent beside the upload, if it was: checked before any content is read. */
  readonly signature?: Buffer | null;
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
    signature: options.signature ?? null,
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
  // An early answer (the pack is refused) must stop the feeding below at its next wait, including
  // a wait for the client's next bytes: a pack refused for its signature at the manifest is
  // answered while the client is still sending, or has paused.
  let refused = false;
  let interrupt: (() => void) | null = null;
  const settled = outcome.then(
    () => undefined,
    () => undefined,
  );
  void settled.then(() => {
    refused = true;
    interrupt?.();
  });
  const post = (m: ToWorker): void => worker.postMessage(m);
  const chunks = source[Symbol.asyncIterator]();
  /** A next() of `chunks` given up on when the pack was refused; the source is closed once it settles. */
  let abandoned: Promise<IteratorResult<Buffer>> | null = null;
  let ended = false;
  try {
    while (!refused) {
      const next = chunks.next();
      const step = await new Promise<IteratorResult<Buffer> | null>((resolve, reject) => {
        interrupt = () => resolve(null);
        next.then(resolve, reject);
      });
      interrupt = null;
      if (step === null) {
        abandoned = next;
        break;
      }
      if (step.done) break;
      // Copied by postMessage: the request's chunk is still waiting to be written to the staged file.
      post({ type: 'chunk', chunk: step.value });
      inFlight += step.value.length;
      if (inFlight > IN_FLIGHT) await Promise.race([new Promise<void>((resolve) => (drained = resolve)), settled]);
      drained = null;
    }
    if (refused) await closeSource(chunks, abandoned); // refused already: read no more of the upload
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

/**
 * Stops reading `chunks` as a for-await's break would. With a next() still waiting for bytes, the
 * source is closed once it settles instead (an async generator queues return() behind it): the
 * answer must not wait for a client that has stopped sending.
 */
async function closeSource(chunks: AsyncIterator<Buffer>, pending: Promise<IteratorResult<Buffer>> | null): Promise<void> {
  if (pending === null) {
    await chunks.return?.();
    return;
  }
  pending.catch(() => {}); // a client that goes away while refused is no error of ours
  void chunks.return?.()?.catch(() => {});
}
