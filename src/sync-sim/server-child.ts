/**
 * The simulator's registry: a real `iqp` server (startServer, the built-in auth and sync plugins,
 * SQLite on disk) in a child process the simulator can SIGKILL mid-push and start again on the same
 * data directory. Its plugins' clock is the real time plus an offset the simulator moves forward
 * (access tokens expire, devices fall behind the compaction horizon) without anyone waiting.
 *
 * Messages in: {type:'user', email, password} · {type:'advance', ms} · {type:'compact'}.
 * Messages out: {type:'ready', url, clockMs} · {type:'done', id, result?, error?}.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import '../threadpool.js';
import { serverConfig } from '../../server/config.js';
import { AUTH_ADMIN_V1, SYNC_ADMIN_V1 } from '../../server/plugins/api.js';
import { startServer } from '../../server/start.js';

export interface ChildRequest {
  readonly id: number;
  readonly type: 'user' | 'advance' | 'compact';
  readonly email?: string;
  readonly password?: string;
  readonly ms?: number;
}

/** The sync config the simulator runs under: small limits so paging, batching and resets happen. */
export const SIM_SYNC_CONFIG = {
  entities: { note: { label: 'Note' }, card: { label: 'Card' }, progress: { label: 'Progress' } },
  retention: { max_days: 2, compact_interval_s: 0 },
  max_push_mutations: 50,
  rate_limits: { push_per_user: { points: 1_000_000, duration_s: 60 }, pull_per_user: { points: 1_000_000, duration_s: 60 } },
};

/** A message to the simulator, unless it is gone (then so is this registry: nobody is left to use it). */
function tell(message: object): void {
  if (process.connected) process.send!(message);
}

async function main(): Promise<void> {
  process.on('disconnect', () => process.exit(0));
  const dataDir = process.argv[2];
  const offset = Number(process.argv[3] ?? '0');
  if (!dataDir || !process.send) throw new Error('usage: fork(server-child.js, [dataDir, clockOffsetMs])');
  writeFileSync(
    join(dataDir, 'server.json'),
    JSON.stringify({
      plugins: {
        auth: { enabled: true, source: 'builtin', required: true, config: { rate_limits: { per_ip: { points: 1_000_000, duration_s: 60 }, per_email_ip: { points: 1_000_000, duration_s: 60 }, mail_per_email: { points: 1000, duration_s: 60 } } } },
        sync: { enabled: true, source: 'builtin', required: true, config: SIM_SYNC_CONFIG },
      },
    }),
  );
  let skew = offset;
  const clock = { nowMs: () => Date.now() + skew, now: () => new Date(Date.now() + skew).toISOString() };
  const running = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => {}, { pluginClock: clock });
  const admin = running.plugins!.service(AUTH_ADMIN_V1)!;
  const sync = running.plugins!.service(SYNC_ADMIN_V1)!;
  process.on('message', (m: ChildRequest) => {
    const answer = async (): Promise<unknown> => {
      if (m.type === 'user') return (await admin.createUser({ email: m.email!, password: m.password! }, 'cli:sync simulate')).id;
      if (m.type === 'advance') {
        skew += m.ms!;
        return skew;
      }
      return sync.compact();
    };
    answer().then(
      (result) => tell({ type: 'done', id: m.id, result }),
      (err: unknown) => tell({ type: 'done', id: m.id, error: String(err) }),
    );
  });
  tell({ type: 'ready', url: running.url, clockMs: clock.nowMs() });
}

main().catch((err: unknown) => {
  process.stderr.write(`sync simulator server: ${String((err as Error)?.stack ?? err)}\n`);
  process.exit(70);
});
