/**
 * A fresh registry data directory with the corpus published through the API, as an operator and
 * a publisher would do it: `iqp token create`, POST /v1/admin/keys, PUT /v1/admin/packs.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { signatureHeaders } from '../../src/client/publish.js';
import { upload, type CurlResult } from './clients.js';
import type { RegistryCorpus } from './prepare.js';
import { type Child, createAdminToken, registerKey, startIqp } from './servers.js';

export interface FreshRegistry {
  readonly dataDir: string;
  readonly server: Child;
  readonly token: string;
}

/**
 * A new data dir (replacing `dataDir`), a server on it (`workers`, other settings in `env`: an
 * empty database or bucket), an admin token and the bench key registered.
 */
export async function freshRegistry(cliRoot: string, dataDir: string, corpus: Pick<RegistryCorpus, 'pub'>, o: { workers?: number; env?: Readonly<Record<string, string>> } = {}): Promise<FreshRegistry> {
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const server = await startIqp(cliRoot, dataDir, o.workers ?? 1, o.env);
  try {
    const token = createAdminToken(cliRoot, dataDir, o.env);
    await registerKey(server.url, token, readFileSync(corpus.pub, 'utf8'));
    return { dataDir, server, token };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

const sentHeaders = new Map<string, Record<string, string>>();

/** The headers `iqp publish` sends beside `file` (its signature), read once per file and kept. */
export async function publishHeaders(file: string): Promise<Record<string, string>> {
  let headers = sentHeaders.get(file);
  if (!headers) sentHeaders.set(file, (headers = await signatureHeaders(file)));
  return headers;
}

/** PUT `file` as `iqp publish` does (signature header included), with curl. */
export async function publish(reg: FreshRegistry, file: string): Promise<CurlResult> {
  const r = await upload(`${reg.server.url}/v1/admin/packs`, reg.token, file, await publishHeaders(file));
  if (r.status !== 201) throw new Error(`uploading ${file}: ${r.status} ${r.body}`);
  return r;
}

/** Publishes the small packs and then the big one; the blob path of the big pack is returned. */
export async function publishAll(reg: FreshRegistry, corpus: RegistryCorpus): Promise<{ blobPath: string; sha256: string; upload: CurlResult }> {
  for (const p of corpus.small) await publish(reg, p.path);
  const r = await publish(reg, corpus.big.path);
  const sha256 = (JSON.parse(r.body) as { sha256: string }).sha256;
  return { blobPath: join(reg.dataDir, 'blobs', 'sha256', sha256.slice(0, 2), sha256), sha256, upload: r };
}
