/**
 * X-Iqp-Signature on PUT /v1/admin/packs: the pack's manifest.json.minisig, base64, sent by
 * `iqp publish` so the registry can check the signature before it decompresses any content.
 */
import type { IncomingMessage } from 'node:http';
import { IqpError } from '../../src/errors.js';
import { MAX_SENT_SIGNATURE_BYTES } from '../../src/pack/format.js';

export const SIGNATURE_HEADER = 'x-iqp-signature';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The header's bytes, or null without the header; a malformed or oversized one is a usage error (400). */
export function uploadSignature(req: IncomingMessage): Buffer | null {
  const raw = req.headers[SIGNATURE_HEADER];
  if (raw === undefined) return null;
  const text = String(raw);
  const hint = { hint: `Send the pack's manifest.json.minisig as standard base64 (at most ${MAX_SENT_SIGNATURE_BYTES} bytes before encoding), or leave the header out.` };
  if (text.length > Math.ceil(MAX_SENT_SIGNATURE_BYTES / 3) * 4) {
    throw new IqpError('IQP_E_USAGE', `X-Iqp-Signature holds more than ${MAX_SENT_SIGNATURE_BYTES} bytes.`, { limit: MAX_SENT_SIGNATURE_BYTES }, hint);
  }
  // Strict: a value Buffer.from would half-read (other characters are skipped) is refused, not guessed at.
  if (text.length % 4 !== 0 || !BASE64.test(text)) throw new IqpError('IQP_E_USAGE', 'X-Iqp-Signature is not standard base64.', undefined, hint);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length > MAX_SENT_SIGNATURE_BYTES) {
    throw new IqpError('IQP_E_USAGE', `X-Iqp-Signature holds more than ${MAX_SENT_SIGNATURE_BYTES} bytes.`, { limit: MAX_SENT_SIGNATURE_BYTES }, hint);
  }
  return bytes;
}
