/**
 * The keyring of one server meets a kid another server made (a rotation there, or its own key when
 * the secrets differ): every request carrying it verifies, including requests that arrive together
 * while the first of them is re-reading the keys.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { KeySealer } from '../../plugins/auth/crypto/seal.js';
import { SigningKeyStore } from '../../plugins/auth/store/keys.js';
import { Keyring } from '../../plugins/auth/tokens/keyring.js';
import type { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { tempDir } from '../e2e/helpers.js';
import { openDatabase } from './db.js';
import { TestClock } from './support.js';

const open: SqlitePluginDatabase[] = [];
afterEach(() => {
  for (const db of open.splice(0)) db.close();
});

const quiet = { info() {}, warn() {}, error() {} } as unknown as ConstructorParameters<typeof Keyring>[4];

describe('the keyring', () => {
  it('verifies a kid another server just made in every one of several requests that arrive at once', async () => {
    const dir = tempDir('iqp-keyring-');
    const [dbA, dbB] = [openDatabase(dir), openDatabase(dir)];
    open.push(dbA, dbB);
    const clock = new TestClock();
    const a = new Keyring(new SigningKeyStore(dbA), new KeySealer(randomBytes(32)), clock, 60_000, quiet);
    const b = new Keyring(new SigningKeyStore(dbB), new KeySealer(randomBytes(32)), clock, 60_000, quiet);
    await a.ensureKey();
    await b.ensureKey(); // B cannot open A's key (another secret): it makes its own current key.
    const { kid } = await a.signing(); // A, in turn, replaces B's key with one it can open.
    clock.advance(2_000); // past the unknown-kid cooldown, within the periodic reload
    const keys = await Promise.all(Array.from({ length: 4 }, () => b.verifying(kid)));
    expect(keys.every((k) => k !== null), 'every request verifies the new kid').toBe(true);
  });
});
