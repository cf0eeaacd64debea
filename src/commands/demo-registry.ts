/**
 * The registry half of `iqp demo`: a registry in this process on 127.0.0.1 (random port, data dir
 * inside the demo folder), driven over real HTTP by the same client the commands use; then the
 * same registry with the auth plugin (demo-accounts.ts).
 */
import { join } from 'node:path';
import type { Context } from '../cli/context.js';
import { withRegistry } from '../cli/registry.js';
import { publishFile, type Published } from '../client/publish.js';
import { pullPack, type PullResult } from '../client/pull.js';
import type { AvailablePacks, KeyAdded } from '../client/types.js';
import { formatPublicKeyFile, generateKeyPair, type PublicKey } from '../pack/minisign.js';
import type { RegistryClient } from '../client/registry.js';
import { ReleaseApi } from '../client/releases.js';
import { pullRelease } from '../client/release-pull.js';
import { TrustStore } from '../client/trust.js';
import { serverConfig } from '../../server/config.js';
import { startServer } from '../../server/start.js';
import { type AccountsDemo, accountsDemo } from './demo-accounts.js';

export interface RegistryDemo {
  readonly url: string;
  readonly data_dir: string;
  readonly key_id: string;
  readonly published: readonly Pick<Published, 'package_id' | 'version' | 'status' | 'sha256'>[];
  readonly available: readonly string[];
  readonly pulled: PullResult;
  readonly release: ReleaseDemo;
  readonly accounts: AccountsDemo;
}

export interface ReleaseDemo {
  readonly id: number;
  readonly release_key_id: string;
  readonly validation_failures: readonly string[];
  readonly sequence: number;
  readonly latest_for_app: Record<string, number | null>;
  readonly pulled: readonly string[];
  readonly latest_after_deprecation: number | null;
}

/** The release half: draft → attach → validate (fail, then pass) → sign and publish → latest → pull → deprecate. */
async function releaseDemo(ctx: Context, client: RegistryClient, work: string, published: RegistryDemo['published'], say: (line: string) => void): Promise<ReleaseDemo> {
  const releaseKey = generateKeyPair();
  await client.json<KeyAdded>({ method: 'POST', path: '/v1/admin/keys', auth: true, json: { public_key: formatPublicKeyFile(releaseKey), name: 'demo release manager', purpose: 'release' }, expect: [201] });
  say(`12. keys    release key ${releaseKey.keyId} registered; it signs on this machine only`);
  const api = new ReleaseApi(client);
  const byType = (type: string) => published.find((p) => p.package_id.includes(`.${type}.`))!;
  const release = await api.create({ name: 'demo-2026.11', channel: 'stable', min_app_version: '1.0.0', roles: ['translation', 'recitation', 'deck'], notes: 'iqp demo release' });
  for (const role of ['translation', 'recitation']) await api.attach(release.id, role, byType(role).package_id, byType(role).version);
  const failing = await api.validate(release.id);
  say(`13. release ${release.id} drafted; validate: ${failing.ok ? 'ok' : `fails (${failing.failures.map((f) => `${f.code} ${f.role ?? ''}`.trim()).join(', ')})`}`);
  await api.attach(release.id, 'deck', byType('deck').package_id, byType('deck').version);
  const passing = await api.validate(release.id);
  say(`14. attach  deck added; validate: ${passing.ok ? 'ok' : 'fails'}`);
  const done = await api.sign(release.id, releaseKey, 'publish', ctx.config.releaseExpiryDays, ctx.now());
  say(`15. publish release ${done.id} signed with ${done.signer_key_id} (sequence ${done.sequence}, expires ${done.expires_at})`);
  const latestFor: Record<string, number | null> = {};
  for (const app of ['0.9.0', '1.4.0']) {
    latestFor[app] = await api.latest('stable', app).then(
      (m) => m.release_id,
      () => null,
    );
  }
  say(`16. latest  app 0.9.0 → ${latestFor['0.9.0'] ?? 'none'}, app 1.4.0 → release ${latestFor['1.4.0']}`);
  const pulled = await pullRelease(client, {
    release: 'latest',
    channel: 'stable',
    appVersion: '1.4.0',
    releaseKeys: [releaseKey],
    trust: new TrustStore(join(work, 'release-trust.json')),
    outDir: join(work, 'release'),
    now: ctx.now(),
  });
  say(`17. pull    release ${pulled.release_id}: ${pulled.packs.length} packs → release/, manifest signature, expiry and sequence checked`);
  await api.deprecate(release.id, 'demo: withdrawn');
  const after = await api.latest('stable', '1.4.0').then(
    (m) => m.release_id,
    () => null,
  );
  say(`18. deprecate release ${release.id}; latest for app 1.4.0 is now ${after ?? 'none'}`);
  return {
    id: release.id,
    release_key_id: releaseKey.keyId,
    validation_failures: failing.failures.map((f) => f.code),
    sequence: done.sequence!,
    latest_for_app: latestFor,
    pulled: pulled.packs.map((p) => `${p.package_id}@${p.version}`),
    latest_after_deprecation: after,
  };
}

/** The content half: publish, list, pull, then the release lifecycle, on a registry with no plugins. */
async function contentDemo(ctx: Context, dataDir: string, work: string, key: PublicKey, packPaths: readonly string[], say: (line: string) => void): Promise<Omit<RegistryDemo, 'accounts'>> {
  const running = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => {});
  try {
    say(`6. serve    registry on ${running.url} (data: registry-data/)`);
    // The first admin token comes from the data directory, as `iqp token create` makes it.
    const { token } = await running.registry.services.tokens.create('admin', 'iqp demo', 'cli:demo');
    say('7. token    admin token created (held in memory, never printed)');
    return await withRegistry({ ...ctx, config: { ...ctx.config, registry: running.url, token } }, { token: true }, async (client) => {
      const added = await client.json<KeyAdded>({ method: 'POST', path: '/v1/admin/keys', auth: true, json: { public_key: formatPublicKeyFile(key), name: 'demo' }, expect: [201] });
      say(`8. keys     publisher key ${added.key.key_id} registered (POST /v1/admin/keys)`);
      const published = [];
      for (const path of packPaths) {
        const p = await publishFile(client, path);
        published.push({ package_id: p.package_id, version: p.version, status: p.status, sha256: p.sha256 });
        say(`9. publish  ${p.package_id}@${p.version} → ${p.status} (PUT /v1/admin/packs, verified by the registry)`);
      }
      const available = await client.json<AvailablePacks>({ method: 'GET', path: '/v1/packs/available' });
      say(`10. list    GET /v1/packs/available: ${available.packs.map((p) => `${p.package_id}@${p.version}`).join(', ')}`);
      const first = published[0]!;
      const pulled = await pullPack(client, {
        ref: { id: first.package_id, spec: first.version, exact: true },
        outDir: join(work, 'pulled'),
        pinnedKeys: [key],
      });
      say(`11. pull    ${pulled.package_id}@${pulled.version} → pulled/, size, SHA-256 and signature (key ${pulled.signer_key_id}) checked`);
      const release = await releaseDemo(ctx, client, work, published, say);
      return { url: running.url, data_dir: dataDir, key_id: added.key.key_id, published, available: available.packs.map((p) => p.package_id), pulled, release };
    });
  } finally {
    await running.close();
    say('19. stop    registry stopped');
  }
}

export async function registryDemo(ctx: Context, work: string, key: PublicKey, packPaths: readonly string[], say: (line: string) => void): Promise<RegistryDemo> {
  const dataDir = join(work, 'registry-data');
  const content = await contentDemo(ctx, dataDir, work, key, packPaths, say);
  // Then app accounts on the same registry, as an operator adds them: enable the plugin, restart.
  return { ...content, accounts: await accountsDemo(ctx, dataDir, say) };
}
