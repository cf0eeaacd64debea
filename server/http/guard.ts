/**
 * Who may call a declared route (src/api/route.ts `auth`): the guard mountRoute puts in front of
 * every route whose auth is not 'none', before its body is read or judged.
 *
 * A bearer token is first looked up as an API token (publisher or admin; admin includes
 * publisher). One that is not a known API token is offered to the auth provider, when a plugin
 * provides one (AuthServiceV1, asked per request because plugins start after the app is made): a
 * user principal passes a publisher or admin route only if its roles include that role, and
 * 'user' routes take only user principals; a publisher or admin route also asks whether the user's
 * account is still active (a disabled or deleted admin's token is refused at once, not when it
 * expires). The principal is left on res.locals.principal.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { RouteAuth, RouteSpec } from '../../src/api/route.js';
import { IqpError } from '../../src/errors.js';
import type { AuthServiceV1, Principal } from '../plugins/api.js';
import type { TokenService } from '../services/tokens.js';

const BEARER = /^Bearer[ ]+(\S+)$/i;

/** The roles that satisfy each route auth (admin includes publisher). */
const SATISFIES: Record<Exclude<RouteAuth, 'none' | 'user'>, readonly string[]> = { admin: ['admin'], publisher: ['admin', 'publisher'] };

export interface GuardDeps {
  readonly tokens: TokenService;
  /** The auth plugin's service, if one is running now. */
  readonly userAuth?: () => AuthServiceV1 | null;
}

export function principalOf(res: Response): Principal | null {
  return (res.locals['principal'] as Principal | undefined) ?? null;
}

/** How the audit log names who did something. */
export function actorOf(res: Response): string {
  const p = principalOf(res);
  if (!p) return 'anonymous';
  return p.kind === 'token' ? `token:${p.id}(${p.name})` : `user:${p.userId}`;
}

function unauthorized(res: Response, message: string, challenge: string, code: 'IQP_E_UNAUTHORIZED' | 'IQP_E_TOKEN_EXPIRED' = 'IQP_E_UNAUTHORIZED'): IqpError {
  res.setHeader('WWW-Authenticate', challenge);
  return new IqpError(code, message);
}

async function authenticate(deps: GuardDeps, req: Request, res: Response): Promise<Principal> {
  const m = req.headers.authorization ? BEARER.exec(req.headers.authorization) : null;
  if (!m) throw unauthorized(res, 'Send Authorization: Bearer <token>.', 'Bearer realm="iqp"');
  const secret = m[1]!;
  const token = await deps.tokens.authenticate(secret);
  if (token) return { kind: 'token', id: token.id, name: token.name, role: token.role };
  const auth = deps.userAuth?.() ?? null;
  const user = auth ? await auth.verifyAccessToken(secret) : null;
  if (user) return user;
  if (auth && (await auth.explainRejection(secret)) === 'expired') {
    throw unauthorized(res, 'The access token has expired.', 'Bearer error="invalid_token", error_description="expired"', 'IQP_E_TOKEN_EXPIRED');
  }
  throw unauthorized(res, 'The token is unknown or revoked.', 'Bearer realm="iqp", error="invalid_token"');
}

function allowed(auth: Exclude<RouteAuth, 'none'>, p: Principal): string | null {
  if (auth === 'user') return p.kind === 'user' ? null : "This needs a signed-in user's access token; API tokens cannot act as a user.";
  const roles = p.kind === 'token' ? [p.role] : p.roles;
  if (roles.some((r) => SATISFIES[auth].includes(r))) return null;
  return p.kind === 'token' ? `This needs the ${auth} role; the token has ${p.role}.` : `This needs the ${auth} role; the user has ${p.roles.join(', ') || 'none'}.`;
}

/** mountRoute's `guard`: null for public routes. */
export function createGuard(deps: GuardDeps): (spec: RouteSpec) => RequestHandler | null {
  return (spec) => {
    const auth = spec.auth;
    if (auth === 'none') return null;
    return async (req, res, next) => {
      if (auth === 'user' && !deps.userAuth?.()) throw unauthorized(res, 'This registry has no sign-in for app users (no auth plugin is enabled).', 'Bearer realm="iqp"');
      const principal = await authenticate(deps, req, res);
      const refusal = allowed(auth, principal);
      if (refusal) throw new IqpError('IQP_E_FORBIDDEN', refusal);
      // A user's token stays valid until it expires; a role's powers end with the account at once.
      if (principal.kind === 'user' && auth !== 'user' && !(await deps.userAuth?.()?.userActive(principal.userId))) {
        throw unauthorized(res, 'The account is disabled or gone.', 'Bearer realm="iqp", error="invalid_token"');
      }
      res.locals['principal'] = principal;
      next();
    };
  };
}
