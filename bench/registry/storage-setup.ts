/**
 * What the storage benchmark publishes and the registries it keeps running while it measures reads:
 *
 * - the corpus: the registry benchmark's small packs (shared with it, in bench/.work/registry/data),
 *   a pack of a few MiB of random bytes for downloads, and a release signing key;
 * - one registry per storage configuration, the download pack published through the API and a
 *   release of it published on `stable` (created, attached, signed here with the release key, as
 *   `iqp release publish` does); the redirect registry shares the proxy one's database and bucket,
 *   so both serve the very same object.
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RegistryClient } from '../../src/client/registry.js';
import { ReleaseApi } from '../../src/client/releases.js';
import { parsePublicKey, parseSecretKey } from '../../src/pack/minisign.js';
import { verifyReleaseManifest } from '../../src/pack/release-manifest.js';
import { generateOnce } from '../lib/files.js';
import { type Backends, freshPlacement, type Placement, type StorageKind, storageEnv } from './backends.js';
import { buildRandomPack, ensureKey, type PackFile, prepareSmallPacks, ROW_BYTES } from './prepare.js';
import { type FreshRegistry, freshRegistry, publish } from './publish.js';
import { type Child, registerKey, startIqp } from './servers.js';

export interface StoragePack extends PackFile {
  readonly sha256: string;
}

export interface StorageCorpus {
  readonly pub: string;
  readonly releaseKey: string;
  readonly releasePub: string;
  /** Distinct small packs, published afresh by each publish run. */
  readonly small: readonly StoragePack[];
  /** The pack downloaded whole, and attached to the release `latest` answers with. */
  readonly download: StoragePack;
}

export function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

export async function prepareStorageCorpus(registryWork: string, cliRoot: string, downloadMiB: number, log: (m: string) => void): Promise<StorageCorpus> {
  const base = await prepareSmallPacks(registryWork, cliRoot, log);
  const release = await ensureKey(base.data, 'registry-bench-release');
  const rows = Math.max(1, Math.round((downloadMiB * 2 ** 20) / ROW_BYTES));
  const id = 'bench.registry.download';
  const dir = join(base.data, `download-${rows}`);
  await generateOnce(dir, `download-v1:${rows}:${readFileSync(base.pub, 'utf8')}`, (tmp) => {
    log(`building a ${(rows * ROW_BYTES) / 2 ** 20} MiB pack of random bytes for downloads (once)…`);
    const meta = { package_id: id, package_type: 'bench', language_code: 'en', name: 'Download pack (storage benchmark)', description: 'Random bytes: a pack of a few MiB downloaded whole.' };
    buildRandomPack(cliRoot, tmp, meta, rows, 4242, base.key, join(tmp, 'pack.iqp'));
  });
  const withSha = async (p: PackFile): Promise<StoragePack> => ({ ...p, sha256: await fileSha256(p.path) });
  const path = join(dir, 'pack.iqp');
  return {
    pub: base.pub,
    releaseKey: release.key,
    releasePub: release.pub,
    small: await Promise.all(base.small.map(withSha)),
    download: await withSha({ path, package_id: id, version: '1.0.0', size: statSync(path).size }),
  };
}

export const LATEST_PATH = '/v1/releases/latest?channel=stable';

export function downloadPath(p: PackFile): string {
  return `/v1/packs/${p.package_id}/download?version=${p.version}`;
}

/** Creates a release on `stable` requiring one role, attaches `pack`, signs it with the release key and publishes it. */
async function publishRelease(url: string, token: string, corpus: StorageCorpus): Promise<number> {
  const client = new RegistryClient({ baseUrl: url, token });
  try {
    const releases = new ReleaseApi(client);
    const r = await releases.create({ name: 'storage benchmark', channel: 'stable', min_app_version: '1.0.0', roles: ['content'] });
    await releases.attach(r.id, 'content', corpus.download.package_id, corpus.download.version);
    await releases.sign(r.id, await parseSecretKey(readFileSync(corpus.releaseKey, 'utf8'), null), 'publish', 30);
    return r.id;
  } finally {
    await client.close();
  }
}

/**
 * GET /v1/releases/latest?channel=stable: 200, release `releaseId`, its signature valid under the
 * bench's release key, and the download pack as its artifact. Returns the body's bytes.
 */
export async function checkLatest(url: string, corpus: StorageCorpus, releaseId: number): Promise<Buffer> {
  const r = await fetch(url + LATEST_PATH);
  const body = Buffer.from(await r.arrayBuffer());
  if (r.status !== 200) throw new Error(`${url}${LATEST_PATH}: ${r.status} ${body.toString('utf8').slice(0, 300)}`);
  const view = JSON.parse(body.toString('utf8')) as { release_id: number; manifest_json: string; signature: string; artifacts: { sha256: string; package_id: string }[] };
  const { manifest } = verifyReleaseManifest(view.manifest_json, view.signature, [parsePublicKey(readFileSync(corpus.releasePub, 'utf8'))]);
  const artifact = manifest.artifacts[0];
  if (view.release_id !== releaseId || manifest.artifacts.length !== 1 || artifact?.sha256 !== corpus.download.sha256) {
    throw new Error(`${url}${LATEST_PATH}: release ${view.release_id} with ${JSON.stringify(manifest.artifacts)}, not release ${releaseId} of ${corpus.download.sha256}`);
  }
  return body;
}

/** A registry the read measurements use, running until the end of the benchmark. */
export interface Standing {
  readonly kind: StorageKind;
  readonly server: Child;
  readonly place: Placement;
  readonly releaseId: number;
}

/**
 * One registry per configuration in `kinds`, each with the download pack and its release published;
 * `pg-s3-redirect` runs on the database and bucket of `pg-s3-proxy` (started for it if not asked for).
 */
export async function startStanding(
  cliRoot: string,
  work: string,
  b: Backends,
  corpus: StorageCorpus,
  kinds: readonly StorageKind[],
  workers: number,
  onStarted: (stop: () => Promise<void>) => void,
): Promise<Map<StorageKind, Standing>> {
  const standing = new Map<StorageKind, Standing>();
  const order = kinds.includes('pg-s3-redirect') && !kinds.includes('pg-s3-proxy') ? ['pg-s3-proxy' as const, ...kinds] : [...kinds];
  for (const kind of order) {
    if (kind === 'pg-s3-redirect') continue;
    const place = await freshPlacement(b, kind);
    const reg: FreshRegistry = await freshRegistry(cliRoot, join(work, `standing-${kind}`), corpus, { workers, env: storageEnv(b, kind, place) });
    onStarted(() => reg.server.stop());
    await registerKey(reg.server.url, reg.token, readFileSync(corpus.releasePub, 'utf8'), 'release');
    const answer = JSON.parse((await publish(reg, corpus.download.path)).body) as { sha256: string };
    if (answer.sha256 !== corpus.download.sha256) throw new Error(`${kind}: the registry took the download pack as ${answer.sha256}`);
    const releaseId = await publishRelease(reg.server.url, reg.token, corpus);
    standing.set(kind, { kind, server: reg.server, place, releaseId });
  }
  const proxy = standing.get('pg-s3-proxy');
  if (kinds.includes('pg-s3-redirect') && proxy) {
    const dataDir = join(work, 'standing-pg-s3-redirect');
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    const server = await startIqp(cliRoot, dataDir, workers, storageEnv(b, 'pg-s3-redirect', proxy.place));
    onStarted(() => server.stop());
    standing.set('pg-s3-redirect', { kind: 'pg-s3-redirect', server, place: proxy.place, releaseId: proxy.releaseId });
  }
  for (const s of standing.values()) await checkLatest(s.server.url, corpus, s.releaseId);
  return standing;
}
