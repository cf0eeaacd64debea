/**
 * Where the client gets access tokens. TokenSource is all the client needs; authTokens() is the
 * stock one for the iqp auth plugin: the refresh token lives in the client's own SyncStore, rotates
 * on every refresh (the new one is stored before it is used), and concurrent refreshes share one
 * request so a rotation is never raced by this process.
 */
import { CLIENT_CODES, SyncError } from './errors.js';
import { CODES, type ErrorBody, type LoginRequest, type SignInResponse, type TokenResponse } from './protocol.js';
import { K } from './state.js';
import type { SyncStore } from './store.js';
import { bounded } from './timing.js';
import { readBody } from './transport.js';

export interface TokenSource {
  /** The current access token, refreshing first if there is none yet; null: signed out. */
  accessToken(): Promise<string | null>;
  /** A new access token; null: the session is over (sign in again). Throws on a network failure. */
  refresh(): Promise<string | null>;
}

export type AuthFetch = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal }) => Promise<Response>;

export interface AuthTokensOptions {
  baseUrl: string;
  store: SyncStore;
  /** Sent with sign-in so the tokens are bound to this device. */
  deviceId?: string;
  deviceName?: string;
  fetch?: AuthFetch;
  /** Milliseconds since the epoch; decides when an access token is about to expire. */
  now?: () => number;
  /**
   * A sign-in, refresh or sign-out request that has not finished by then is aborted and fails like
   * a network error (default 30000, as SyncClient's; 0: no timeout). A refresh that never ended
   * would hold every caller waiting for a token.
   */
  requestTimeoutMs?: number;
}

export interface AuthTokens extends TokenSource {
  /** POST /v1/auth/login; keeps the refresh token. Throws a SyncError with the server's code. */
  signIn(email: string, password: string): Promise<SignInResponse['user']>;
  /** Ends the session on the server (best effort) and forgets the tokens; the sync queue is kept. */
  signOut(): Promise<void>;
  /** True while a refresh token is stored. */
  signedIn(): Promise<boolean>;
}

/** Refresh this long before the access token's stated expiry, so a request does not race it. */
const EARLY_MS = 30_000;

export function authTokens(options: AuthTokensOptions): AuthTokens {
  const base = options.baseUrl.replace(/\/+$/, '');
  const doFetch: AuthFetch = options.fetch ?? ((url, init) => fetch(url, init));
  const now = options.now ?? Date.now;
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  let access: { token: string; expiresAt: number } | null = null;
  let inflight: Promise<string | null> | null = null;
  /**
   * Which session is current: signIn() and signOut() move it on, and a refresh that was out when
   * they did belongs to a session that is over, so its answer must not bring that session back.
   */
  let session = 0;
  /** The store write of the latest signIn() or signOut(), settled or not. */
  let changing: Promise<void> = Promise.resolve();

  async function call<T>(path: string, body: unknown): Promise<{ status: number; body: T | ErrorBody | undefined }> {
    const controller = new AbortController();
    const exchange = async () => {
      const res = await doFetch(base + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      return { res, text: await readBody(res, 1024 * 1024) };
    };
    // Bounded even if the fetch given ignores its signal.
    const timedOut = () => {
      controller.abort();
      return new SyncError(CLIENT_CODES.TIMEOUT, `${path} did not answer within ${timeoutMs} ms`);
    };
    const { res, text } = await bounded(exchange(), undefined, timeoutMs, timedOut);
    let parsed: T | ErrorBody | undefined;
    try {
      parsed = text ? (JSON.parse(text) as T | ErrorBody) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed };
  }

  function remember(tokens: TokenResponse): string {
    access = { token: tokens.access_token, expiresAt: now() + tokens.expires_in * 1000 - EARLY_MS };
    return tokens.access_token;
  }

  /** Runs a signIn()'s or signOut()'s store change as the start of a new session. */
  function newSession<T>(change: () => Promise<T>): Promise<T> {
    session++;
    const done = change();
    changing = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  /** What a refresh of an ended session answers: the token of the session after it, if one is signed in. */
  async function superseded(rotated: string | undefined): Promise<string | null> {
    // The server rotated the ended session's token: end that one too (best effort).
    if (rotated !== undefined) call('/v1/auth/logout', { refresh_token: rotated }).catch(() => undefined);
    await changing;
    return access?.token ?? null;
  }

  async function doRefresh(): Promise<string | null> {
    const mine = session;
    const current = await options.store.get(K.refreshToken);
    if (current === undefined) return null;
    const r = await call<TokenResponse>('/v1/auth/refresh', { refresh_token: current });
    const rotated = r.status === 200 && r.body && 'refresh_token' in r.body ? r.body : undefined;
    if (mine !== session) return superseded(rotated?.refresh_token);
    if (rotated) {
      // Stored before the new access token is handed out: a crash now keeps the token that works.
      await options.store.write({ set: { [K.refreshToken]: rotated.refresh_token } });
      // A signOut() or signIn() during that write came after it, and its own write stands.
      if (mine !== session) return superseded(rotated.refresh_token);
      return remember(rotated);
    }
    if (r.status === 401 || r.status === 400) {
      // Reused, revoked, expired or malformed: this session is over. The queue stays for the next sign-in.
      access = null;
      await options.store.write({ del: [K.refreshToken] });
      return null;
    }
    const err = r.body && 'error' in r.body ? r.body.error : undefined;
    throw new SyncError(err?.code ?? `HTTP_${r.status}`, err?.message ?? `refresh answered ${r.status}`, 'failed', r.status);
  }

  return {
    async accessToken() {
      if (access && now() < access.expiresAt) return access.token;
      return this.refresh();
    },
    refresh() {
      // One request for all callers: two rotations of one token would end the session.
      inflight ??= doRefresh().finally(() => {
        inflight = null;
      });
      return inflight;
    },
    async signIn(email, password) {
      const body: LoginRequest = { email, password };
      if (options.deviceId !== undefined) body.device_id = options.deviceId;
      if (options.deviceName !== undefined) body.device_name = options.deviceName;
      const r = await call<SignInResponse>('/v1/auth/login', body);
      if (r.status === 200 && r.body && 'refresh_token' in r.body) {
        // The store's queue, versions and cursor are one account's: another account's tokens would
        // push that queue into the wrong account and mix the two accounts' data on the device.
        const owner = await options.store.get(K.account);
        if (owner !== undefined && owner !== r.body.user.id) {
          await call('/v1/auth/logout', { refresh_token: r.body.refresh_token }).catch(() => undefined);
          throw new SyncError(
            CLIENT_CODES.OTHER_ACCOUNT,
            'This store holds another account’s sync state; open a store (and a device id) for this account, and keep or delete the other.',
            'blocked',
          );
        }
        const signedIn = r.body;
        await newSession(async () => {
          await options.store.write({ set: { [K.refreshToken]: signedIn.refresh_token, [K.account]: signedIn.user.id } });
          remember(signedIn);
        });
        return signedIn.user;
      }
      const err = r.body && 'error' in r.body ? r.body.error : undefined;
      const code = err?.code ?? `HTTP_${r.status}`;
      const kind = code === CODES.EMAIL_UNVERIFIED || code === CODES.DEVICE_FOREIGN ? 'blocked' : code === CODES.INVALID_CREDENTIALS ? 'signed_out' : 'failed';
      throw new SyncError(code, err?.message ?? `sign-in answered ${r.status}`, kind, r.status, err?.details);
    },
    async signOut() {
      const current = await newSession(async () => {
        access = null;
        const token = await options.store.get(K.refreshToken);
        await options.store.write({ del: [K.refreshToken] });
        return token;
      });
      if (current === undefined) return;
      try {
        await call('/v1/auth/logout', { refresh_token: current });
      } catch {
        // Offline: the token is forgotten here and expires on the server by itself.
      }
    },
    async signedIn() {
      return (await options.store.get(K.refreshToken)) !== undefined;
    },
  };
}

/** A TokenSource over a fixed token, for scripts and tests that sign in some other way. */
export function staticTokens(token: string | null): TokenSource {
  return { accessToken: async () => token, refresh: async () => null };
}

