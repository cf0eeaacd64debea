/**
 * A TLS failure is the connection's, not a bug in iqp: https:// to a registry that speaks plain
 * HTTP, or a certificate the client cannot trust, is IQP_E_NETWORK (exit 3) with a hint about the
 * URL's scheme or the certificate, and is not retried (another attempt meets the same server).
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iqp, sh, tempDir } from '../e2e/helpers.js';

let work: string;
let plain: Server;
let selfSigned: Server;

const listen = (server: Server): Promise<number> => new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
const answer: Parameters<typeof createHttpServer>[1] = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}');

beforeAll(async () => {
  work = tempDir('iqp-tls-');
  const made = sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=127.0.0.1'], work);
  expect(made.code, made.stderr).toBe(0);
  plain = createHttpServer(answer);
  selfSigned = createHttpsServer({ key: readFileSync(join(work, 'key.pem')), cert: readFileSync(join(work, 'cert.pem')) }, answer);
  for (const args of [
    ['init', 'src', '--template', 'translation', '--yes'],
    ['keygen', '--out', 'signing', '--no-passphrase'],
    ['build', 'src', '--key', 'signing.key', '--out', 'pack.iqp'],
  ]) {
    const r = await iqp(args, { cwd: work });
    expect(r.code, r.stderr).toBe(0);
  }
});

afterAll(() => {
  plain?.close();
  selfSigned?.close();
});

/** Runs iqp with retries that would not wait, and returns its one error. */
async function failure(args: string[]): Promise<{ code: number | null; error: { code: string; message: string; hint: string; details: { attempts: number } } }> {
  const r = await iqp([...args, '--json'], { cwd: work, env: { IQP_TOKEN: `iqp_000000000000_${'A'.repeat(43)}`, IQP_RETRY_BASE_MS: '1' } });
  const doc = r.json();
  return { code: r.code, error: doc.error ?? doc.packs?.[0]?.error };
}

describe('TLS failures', () => {
  it('publish to https:// on a registry that speaks plain HTTP: IQP_E_NETWORK, hint about http://, one attempt', async () => {
    const port = await listen(plain);
    const { code, error } = await failure(['publish', 'pack.iqp', '--registry', `https://127.0.0.1:${port}`]);
    expect([code, error.code], JSON.stringify(error)).toEqual([3, 'IQP_E_NETWORK']);
    expect(error.message).toMatch(/wrong version number/);
    expect(error.message).not.toMatch(/bug/);
    expect(error.hint).toContain(`http://`);
    expect(error.details.attempts).toBe(1);
  });

  it('pull from a registry whose certificate is self-signed: IQP_E_NETWORK, hint about the certificate, one attempt', async () => {
    const port = await listen(selfSigned);
    const { code, error } = await failure(['pull', 'example.translation.en', '--registry', `https://127.0.0.1:${port}`]);
    expect([code, error.code], JSON.stringify(error)).toEqual([3, 'IQP_E_NETWORK']);
    expect(error.message).toMatch(/self-signed certificate/);
    expect(error.hint).toMatch(/certificate/);
    expect(error.hint).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(error.details.attempts).toBe(1);
  });
});
