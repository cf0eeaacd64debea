/**
 * Bearer tokens with a role. A token is shown once at creation; only the SHA-256 of its secret is
 * stored, so a leaked database does not leak working tokens.
 */
import { createHash, randomBytes } from 'node:crypto';
import { IqpError } from '../../src/errors.js';
import type { MetadataStore, Role, TokenRecord } from '../stores/types.js';
import type { Clock } from './clock.js';

export const ROLES: readonly Role[] = ['admin', 'publisher'];
const TOKEN_PATTERN = /^iqp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export class TokenService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly clock: Clock,
  ) {}

  async create(role: Role, name: string, actor: string): Promise<{ token: string; record: TokenRecord }> {
    if (!isRole(role)) throw new IqpError('IQP_E_USAGE', `Unknown role ${JSON.stringify(role)}; use ${ROLES.join(' or ')}.`);
    const id = randomBytes(6).toString('hex');
    const token = `iqp_${id}_${randomBytes(32).toString('base64url')}`;
    const record: TokenRecord = { id, name: name.trim() || `${role}-${id}`, role, created_at: this.clock.now(), last_used_at: null, revoked_at: null };
    await this.meta.createToken(record, hashToken(token));
    await this.meta.appendAudit({ at: record.created_at, actor, action: 'token.create', target: `token:${id}`, details: { after: { role, name: record.name } } });
    return { token, record };
  }

  /** The token's record, or null when the header names no valid token. */
  async authenticate(secret: string): Promise<TokenRecord | null> {
    if (!TOKEN_PATTERN.test(secret)) return null;
    return this.meta.findToken(hashToken(secret), this.clock.now());
  }

  list(): Promise<TokenRecord[]> {
    return this.meta.listTokens();
  }

  async revoke(id: string, actor: string): Promise<void> {
    const at = this.clock.now();
    if (!(await this.meta.revokeToken(id, at))) {
      throw new IqpError('IQP_E_NOT_FOUND', `No active token ${id}.`, { id }, { hint: 'See the ids of the tokens and whether they are already revoked with `iqp token list`.' });
    }
    await this.meta.appendAudit({ at, actor, action: 'token.revoke', target: `token:${id}`, details: null });
  }
}
