/**
 * The thread that verifies one upload (verify-thread.ts starts it): decompression, hashing, the tar
 * rules, the signature and integrity_check all run here, so the registry's event loop keeps
 * answering while a large or hostile pack is checked. Chunks arrive as messages; each is
 * acknowledged once read, which is what bounds the memory the request's thread may fill.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { IqpError, toIqpError } from '../../src/errors.js';
import { DEFAULT_LIMITS, ENTRY } from '../../src/pack/format.js';
import { parsePublicKey } from '../../src/pack/minisign.js';
import { readFileChunks } from '../../src/pack/reader.js';
import { verifyPackSignedFirst, verifyPackStaged } from '../../src/pack/verify.js';
import type { FromWorker, ToWorker, VerifyJob } from './verify-messages.js';

const port = parentPort!;
const job = workerData as VerifyJob;
const send = (message: FromWorker): void => port.postMessage(message);

const queue: ToWorker[] = [];
let wake: (() => void) | null = null;
port.on('message', (m: ToWorker) => {
  queue.push(m);
  wake?.();
});

async function* received(): AsyncGenerator<Buffer> {
  for (;;) {
    while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
    const m = queue.shift()!;
    if (m.type === 'end') return;
    if (m.type === 'abort') throw new IqpError('IQP_E_INTERNAL', 'The upload stopped before its end.');
    const chunk = Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength);
    yield chunk;
    send({ type: 'consumed', bytes: chunk.length });
  }
}

/**
 * A content.sqlite over the registry's own max_content_bytes is the operator's limit (413), not a
 * broken pack; over the format's 16 GiB it stays IQP_E_PACK_ENTRY_TOO_LARGE, as iqp verify says.
 */
function registryLimit(err: IqpError): IqpError {
  const size = Number(err.details?.['size']);
  if (err.code !== 'IQP_E_PACK_ENTRY_TOO_LARGE' || err.details?.['entry'] !== ENTRY.content || size > DEFAULT_LIMITS.maxContentBytes) return err;
  return new IqpError('IQP_E_CONTENT_TOO_LARGE', `content.sqlite is ${size} bytes; this registry accepts at most ${job.limits.maxContentBytes} (max_content_bytes).`, err.details);
}

try {
  const options = {
    trustedKeys: job.publicKeys.map((k) => parsePublicKey(k)),
    limits: job.limits,
    maxCompressionRatio: job.maxCompressionRatio,
    contentPath: job.contentPath,
  };
  // Without the signature beside the upload (curl, older clients), the one in the pack comes last:
  // two passes, so content is only written once the signature is known to be trusted.
  const report = job.signature
    ? await verifyPackSignedFirst(received(), Buffer.from(job.signature.buffer, job.signature.byteOffset, job.signature.byteLength), options)
    : await verifyPackStaged(received(), () => readFileChunks(job.stagedPath), options);
  send({ type: 'done', report });
} catch (err) {
  const e = registryLimit(toIqpError(err));
  send({ type: 'failed', error: { code: e.code, message: e.message, hint: e.hint, ...(e.details ? { details: e.details } : {}) } });
} finally {
  port.close();
}
