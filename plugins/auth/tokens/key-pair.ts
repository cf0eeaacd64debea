/** A new Ed25519 signing key pair as JWKs, the private half sealed for the database. */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import type { KeySealer } from '../crypto/seal.js';
import type { NewKeyRow } from '../store/keys.js';

export const KID = /^[A-Za-z0-9_-]{1,64}$/;

export async function newKeyPair(sealer: KeySealer): Promise<NewKeyRow> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const kid = randomBytes(12).toString('base64url');
  const meta = { kid, alg: 'EdDSA', use: 'sig' };
  const priv = JSON.stringify({ ...(await exportJWK(privateKey)), ...meta });
  return { kid, publicJwk: JSON.stringify({ ...(await exportJWK(publicKey)), ...meta }), privateSealed: sealer.seal(priv, kid) };
}
