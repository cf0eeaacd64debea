/**
 * Mailed codes and links against guesses that arrive together, on a real SQLite file and on
 * PostgreSQL: five tries end a code however the tries interleave, so ten guesses sent at once are
 * not ten chances.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import manifest from '../../plugins/auth/iqp-plugin.json' with { type: 'json' };
import { Codes, MAX_TRIES } from '../../plugins/auth/codes.js';
import type { AuthConfig } from '../../plugins/auth/config.js';
import { CodeStore } from '../../plugins/auth/store/codes.js';
import { UserStore } from '../../plugins/auth/store/users.js';
import type { PluginContext, PluginDatabase } from '../../server/plugins/api.js';
import { PgPluginDatabase } from '../../server/plugins/pg-db.js';
import { tempDir } from '../e2e/helpers.js';
import { describePg, freshSchema } from '../postgres/harness.js';
import { openDatabase } from './db.js';
import { configWith, TestClock } from './support.js';

const closing: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

/** The plugin's codes over `db`, with the context they read (clock, database, config) as the host hands it. */
async function codesOn(db: PluginDatabase) {
  await new UserStore(db).insert({ id: 'u1', email: 'ann@example.org', password_hash: null, email_verified: 0, role: 'user', disabled: 0, created_at: 't' });
  const ctx = { clock: new TestClock(), db, config: configWith() } as unknown as PluginContext<AuthConfig>;
  const codes = new Codes(ctx, new CodeStore(db), randomBytes(32));
  const attempts = async (kind: 'code' | 'link') => (await db.get<{ attempts: number }>('SELECT attempts FROM auth_codes WHERE kind = ?', [kind]))?.attempts;
  return { codes, attempts };
}

/** Six-digit codes other than `code`. */
const wrongCodes = (code: string, n: number) => Array.from({ length: n }, (_, i) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0'));

function sqlite(): PluginDatabase {
  const db = openDatabase(tempDir('iqp-auth-codes-'));
  closing.push(() => db.close());
  return db;
}

describe('mailed codes and links on SQLite', () => {
  it('judge only five of ten guesses of a code sent at once: the right one, sent tenth, is refused', async () => {
    const { codes, attempts } = await codesOn(sqlite());
    const { code } = await codes.issue('u1', 'verify');
    const guesses = [...wrongCodes(code, 9), code];
    const users = await Promise.all(guesses.map((g) => codes.useCode('u1', 'verify', g)));
    expect(users).toEqual(Array(10).fill(null));
    expect(await attempts('code')).toBe(MAX_TRIES);
    expect(await codes.useCode('u1', 'verify', code), 'the code has ended').toBeNull();
  });

  it('judge only five of ten guesses of a link sent at once, and the right code still works on a fifth try', async () => {
    const { codes, attempts } = await codesOn(sqlite());
    const { code, link } = await codes.issue('u1', 'verify');
    const [id] = link.split('.');
    const wrong = Array.from({ length: 9 }, () => `${id}.${randomBytes(32).toString('base64url').slice(0, 43)}`);
    expect(await Promise.all([...wrong, link].map((l) => codes.useLink('verify', l)))).toEqual(Array(10).fill(null));
    expect(await attempts('link')).toBe(MAX_TRIES);
    for (const g of wrongCodes(code, MAX_TRIES - 1)) expect(await codes.useCode('u1', 'verify', g)).toBeNull();
    expect(await codes.useCode('u1', 'verify', code)).toBe('u1');
  });
});

describePg('mailed codes on PostgreSQL', () => {
  it('count at most five tries of one code, however many guesses arrive at once', async () => {
    const schema = await freshSchema();
    for (const m of manifest.migrations) await schema.sql(m.postgres);
    const db = new PgPluginDatabase(schema.options({ poolSize: 8 }));
    closing.push(async () => {
      await db.close();
      await schema.drop();
    });
    const { codes, attempts } = await codesOn(db);
    const { code } = await codes.issue('u1', 'verify');
    expect(await Promise.all(wrongCodes(code, 20).map((g) => codes.useCode('u1', 'verify', g)))).toEqual(Array(20).fill(null));
    expect(await attempts('code')).toBe(MAX_TRIES);
    expect(await codes.useCode('u1', 'verify', code), 'the code has ended').toBeNull();
  });
});
