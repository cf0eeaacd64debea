/** Bearer-token authentication with roles: admin may do everything, publisher may publish and deprecate. */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { IqpError } from '../../src/errors.js';
import type { TokenService } from '../services/tokens.js';
import type { Role, TokenRecord } from '../stores/types.js';

const ALLOWED: Record<Role, readonly Role[]> = { admin: ['admin'], publisher: ['admin', 'publisher'] };

export function actorOf(res: Response): string {
  const token = res.locals['token'] as TokenRecord | undefined;
  return token ? `token:${token.id}(${token.name})` : 'anonymous';
}

export function requireRole(tokens: TokenService, role: Role): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const m = header ? /^Bearer[ ]+(\S+)$/i.exec(header) : null;
    if (!m) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="iqp"');
      throw new IqpError('IQP_E_UNAUTHORIZED', 'Send Authorization: Bearer <token>.');
    }
    const token = await tokens.authenticate(m[1]!);
    if (!token) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="iqp", error="invalid_token"');
      throw new IqpError('IQP_E_UNAUTHORIZED', 'The token is unknown or revoked.');
    }
    if (!ALLOWED[role].includes(token.role)) throw new IqpError('IQP_E_FORBIDDEN', `This needs the ${role} role; the token has ${token.role}.`);
    res.locals['token'] = token;
    next();
  };
}
