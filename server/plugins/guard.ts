/**
 * Who may call a plugin route, decided as the core decides for its own: API tokens with a role
 * through requireRole, and for 'user' routes (and user tokens carrying a role) the access tokens of
 * the plugin providing auth.v1. The caller ends up in res.locals.principal for RouteInput.principal.
 * The core's own guard (http/guard.ts, with AppDeps.userAuth) takes this over when it exists.
 */
import type { RequestHandler } from 'express';
import type { RouteSpec } from '../../src/api/route.js';
import { IqpError } from '../../src/errors.js';
import { requireRole } from '../http/auth.js';
import type { TokenService } from '../services/tokens.js';
import type { TokenRecord } from '../stores/types.js';
import type { AuthServiceV1, Principal } from './api.js';
import { type Guard, PRINCIPAL } from './routes.js';

function bearer(header: string | undefined): string | null {
  const m = header ? /^Bearer[ ]+(\S+)$/i.exec(header) : null;
  return m ? m[1]! : null;
}

const unauthorized = (message: string) => new IqpError('IQP_E_UNAUTHORIZED', message);

/** `userAuth` answers the auth.v1 service when a plugin provides it, else null. */
export function pluginGuard(tokens: TokenService, userAuth: () => AuthServiceV1 | null): Guard {
  const roles = { publisher: requireRole(tokens, 'publisher'), admin: requireRole(tokens, 'admin') };
  const tokenPrincipal: RequestHandler = (_req, res, next) => {
    const t = res.locals['token'] as TokenRecord;
    res.locals[PRINCIPAL] = { kind: 'token', id: t.id, name: t.name, role: t.role } satisfies Principal;
    next();
  };
  return (spec: RouteSpec) => {
    if (spec.auth === 'none') return null;
    if (spec.auth !== 'user') {
      const role = spec.auth;
      return async (req, res, next) => {
        const auth = userAuth();
        const token = bearer(req.headers.authorization);
        // A signed-in user whose roles include this one passes too, once an auth provider is enabled.
        const user = auth && token ? await auth.verifyAccessToken(token) : null;
        if (user) {
          if (!user.roles.includes(role) && !user.roles.includes('admin')) return next(new IqpError('IQP_E_FORBIDDEN', `This needs the ${role} role.`));
          res.locals[PRINCIPAL] = user;
          return next();
        }
        try {
          await roles[role](req, res, (err?: unknown) => (err ? next(err) : tokenPrincipal(req, res, next)));
        } catch (err) {
          next(err);
        }
      };
    }
    return async (req, res, next) => {
      const auth = userAuth();
      const token = bearer(req.headers.authorization);
      res.setHeader('WWW-Authenticate', 'Bearer realm="iqp"');
      if (!auth) return next(unauthorized('Signing in needs an auth plugin, and none is running on this registry.'));
      if (!token) return next(unauthorized('Send Authorization: Bearer <access token>.'));
      const user = await auth.verifyAccessToken(token);
      if (!user) {
        const why = await auth.explainRejection(token);
        return next(why === 'expired' ? unauthorized('The access token has expired; refresh it.') : unauthorized('The access token is not valid here.'));
      }
      res.locals[PRINCIPAL] = user;
      res.removeHeader('WWW-Authenticate');
      next();
    };
  };
}
