/**
 * The registry half of `iqp demo`: a registry in this process on 127.0.0.1 (random port, data dir
 * inside the demo folder), driven over real HTTP by the same client the commands use.
 */
import { join } from 'node:path';
import type { Context } from '../cli/context.js';
import { withRegistry } from '../cli/registry.js';
import { publishFile, type Published } from '../client/publish.js';
import { pullPack, type PullResult } from '../client/pull.js';
import type { AvailablePacks, KeyAdded } from '../client/types.js';
import { formatPublicKeyFile, type PublicKey } from '../pack/minisign.js';
import { serverConfig } from '../../server/config.js';
import { startServer } from '../../server/start.js';

export interface RegistryDemo {
  readonly url: string;
  readonly data_dir: string;
  readonly key_id: string;
  readonly published: readonly Pick<Published, 'package_id' | 'version' | 'status' | 'sha256'>[];
  readonly available: readonly string[];
  readonly pulled: PullResult;
}

export async function registryDemo(ctx: Context, work: string, key: PublicKey, packPaths: readonly string[], say: (line: string) => void): Promise<RegistryDemo> {
  const dataDir = join(work, 'registry-data');
  const running = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => {});
  try {
    say(`6. serve    registry on ${running.url} (data: registry-data/)`);
    // The first admin token comes from the data directory, as `iqp token create` makes it.
    const { token } = await running.registry.services.tokens.create('admin', 'iqp demo', 'cli:demo');
    say('7. token    admin token created (held in memory, never printed)');
    return await withRegistry(ctx, { registry: running.url, token }, { token: true }, async (client) => {
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
      return { url: running.url, data_dir: dataDir, key_id: added.key.key_id, published, available: available.packs.map((p) => p.package_id), pulled };
    });
  } finally {
    await running.close();
    say('12. stop    registry stopped');
  }
}
