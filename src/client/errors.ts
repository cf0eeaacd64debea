/**
 * Registry answers and socket failures as IqpErrors: a coded JSON error keeps its code (so the
 * exit status follows the catalog), a connection failure is IQP_E_NETWORK, anything else the
 * registry says that we did not expect is IQP_E_REGISTRY.
 */
import { CATALOG, EXIT, type ErrorCode, IqpError, tlsFailure } from '../errors.js';

/** Failures of the connection itself, from node (system errors) or undici. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'IQP_ANSWER_TIMEOUT',
  'IQP_BODY_ENDED_SHORT',
]);

/** An answer that was not complete within json_timeout_ms: cut, and retried like the connection's own timeouts. */
export class AnswerTimeout extends Error {
  readonly code = 'IQP_ANSWER_TIMEOUT';
  readonly hint = 'The registry answers too slowly: if it is only slow (a long listing over a slow link), raise json_timeout_ms (IQP_JSON_TIMEOUT_MS).';

  constructor(readonly limitMs: number) {
    super(`no whole answer within json_timeout_ms (${limitMs} ms)`);
  }
}

/**
 * A download body that ended, without an error, before the bytes it was to carry (sent without a
 * Content-Length, and cut by a proxy or a dropped connection): what arrived stays in the part, and
 * the rest is asked for again like after any dropped connection.
 */
export class BodyEndedShort extends Error {
  readonly code = 'IQP_BODY_ENDED_SHORT';

  constructor(received: number, expected: number) {
    super(`the download ended after ${received} of ${expected} bytes`);
  }
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isNetworkError(err: unknown): boolean {
  const code = errorCode(err);
  if (code !== undefined && NETWORK_CODES.has(code)) return true;
  // Several connection failures at once (e.g. IPv4 and IPv6 both refused) arrive as one AggregateError.
  return err instanceof AggregateError && err.errors.some(isNetworkError);
}

/**
 * The connection failed, transiently (isNetworkError: retried) or in its TLS (a scheme or a
 * certificate wrong: another attempt would meet the same server, so not retried).
 */
export function isConnectionError(err: unknown): boolean {
  return isNetworkError(err) || tlsFailure(err) !== null;
}

function errno(err: unknown): string | undefined {
  return errorCode(err) ?? (err instanceof AggregateError ? errorCode(err.errors[0]) : undefined);
}

/** What went wrong with the connection, in a few words: `connect ECONNREFUSED 127.0.0.1:1`. */
export function networkReason(err: unknown): string {
  const tls = tlsFailure(err);
  if (tls) return `TLS: ${tls.reason}`;
  return err instanceof Error && err.message ? err.message.replace(/\.$/, '') : (errno(err) ?? String(err));
}

/** A connection that failed, or whose TLS did (IQP_E_NETWORK either way; TLS with its own hint). */
export function networkError(err: unknown, what: string, attempts: number): IqpError {
  const code = errno(err);
  const tries = attempts === 1 ? '' : ` (${attempts} attempts)`;
  const hint = tlsFailure(err)?.hint ?? (err instanceof AnswerTimeout ? err.hint : undefined);
  return new IqpError('IQP_E_NETWORK', `${what} failed: ${networkReason(err)}${tries}.`, { ...(code ? { errno: code } : {}), attempts }, { cause: err, ...(hint ? { hint } : {}) });
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown; details?: unknown };
}

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(CATALOG, code);
}

/**
 * The error a non-success response stands for. A registry-side I/O failure or bug keeps its
 * message but becomes IQP_E_REGISTRY: those codes' exit statuses describe the machine that
 * raised them, not this one.
 */
export function responseError(status: number, bodyText: string, what: string): IqpError {
  let body: ErrorBody | null = null;
  try {
    body = JSON.parse(bodyText) as ErrorBody;
  } catch {
    // Not JSON: a proxy's HTML page, say.
  }
  const err = body && typeof body === 'object' ? body.error : undefined;
  const message = typeof err?.message === 'string' ? err.message : undefined;
  const details = err?.details && typeof err.details === 'object' && !Array.isArray(err.details) ? (err.details as Record<string, unknown>) : undefined;
  if (isErrorCode(err?.code)) {
    const code = err.code;
    const local: number = CATALOG[code].exit;
    if (local !== EXIT.io && local !== EXIT.internal) return new IqpError(code, message, details);
    return new IqpError('IQP_E_REGISTRY', `${what}: the registry failed with ${code} (HTTP ${status}): ${message ?? CATALOG[code].message}`, {
      status,
      registry_code: code,
    });
  }
  const said = message ?? bodyText.replace(/\s+/g, ' ').trim().slice(0, 200);
  return new IqpError('IQP_E_REGISTRY', `${what}: unexpected HTTP ${status}${said ? `: ${said}` : ''}.`, {
    status,
    ...(typeof err?.code === 'string' ? { registry_code: err.code } : {}),
  });
}

/** An IqpError with every occurrence of the secrets replaced, in its message and its details. */
export function redactError(err: IqpError, secrets: readonly string[]): IqpError {
  const live = secrets.filter((s) => s.length > 0);
  const scrub = (text: string) => live.reduce((t, s) => t.split(s).join('***'), text);
  const detailsText = err.details ? JSON.stringify(err.details) : '';
  if (!live.some((s) => err.message.includes(s) || detailsText.includes(s))) return err;
  const details = err.details ? (JSON.parse(scrub(detailsText)) as Record<string, unknown>) : undefined;
  return new IqpError(err.code, scrub(err.message), details);
}
