/**
 * `iqp sync compact | export | import | stats`: the sync plugin's data, managed on the registry host
 * against its data directory, also while the server runs (the plugins run in command mode:
 * server/plugins/offline.ts). Exports never print payloads to the terminal unless asked to
 * (`--out -`); counts only otherwise.
 */
import { randomInt } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { AUTH_ADMIN_V1, SYNC_ADMIN_V1 } from '../../server/plugins/api.js';
import type { OfflinePlugins } from '../../server/plugins/offline.js';
import { openAtomic } from '../atomic.js';
import type { Context } from '../cli/context.js';
import { printable } from '../cli/output.js';
import { withSettings } from '../cli/setting-options.js';
import { IqpError } from '../errors.js';
import { requireFile } from '../files.js';
import type { CommandGroup } from './types.js';
import { withRegistryPlugins } from './users.js';

/** An account's id from its id or email (the auth plugin owns accounts). */
async function userId(host: OfflinePlugins, who: string): Promise<string> {
  const users = await host.service(AUTH_ADMIN_V1).listUsers();
  const u = users.find((x) => x.id === who || x.email.toLowerCase() === who.toLowerCase());
  if (!u) throw new IqpError('IQP_E_USER_NOT_FOUND', `No user ${who}.`, { user: who });
  return u.id;
}

const compact = {
  define: () =>
    withSettings(
      new Command('compact')
        .description('drop tombstones and history every active device has pulled past (safe while clients sync)')
        .option('-u, --user <user>', 'one account (id or email); default: every account'),
      'sync compact',
    ),
  async run(ctx: Context, opts: { user?: string }): Promise<void> {
    const stats = await withRegistryPlugins(ctx, 'sync compact', async (host) => host.service(SYNC_ADMIN_V1).compact(opts.user ? await userId(host, opts.user) : undefined));
    ctx.out.result({ compacted: stats }, () => `Compacted ${stats.users} account(s): ${stats.tombstones} tombstones, ${stats.versions} old versions, ${stats.mutations} old mutation results removed.`);
  },
};

const exportCmd = {
  define: () =>
    withSettings(
      new Command('export')
        .description('write an account’s sync data as NDJSON with a checksum trailer (docs/sync-protocol.md)')
        .requiredOption('-u, --user <user>', 'the account (id or email)')
        .requiredOption('-o, --out <file>', 'where to write it (written atomically); - for stdout'),
      'sync export',
    ),
  async run(ctx: Context, opts: { user: string; out: string }): Promise<void> {
    const trailer = await withRegistryPlugins(ctx, 'sync export', async (host) => {
      const lines = host.service(SYNC_ADMIN_V1).exportLines(await userId(host, opts.user), 'cli:sync export');
      if (opts.out === '-') {
        let last = '';
        for await (const chunk of lines) {
          if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
          last = chunk;
        }
        return JSON.parse(last).trailer as Record<string, unknown>;
      }
      const file = openAtomic(resolve(ctx.cwd, opts.out), 0o600);
      try {
        let last = '';
        for await (const chunk of lines) {
          file.write(Buffer.from(chunk));
          last = chunk;
        }
        file.commit();
        return JSON.parse(last).trailer as Record<string, unknown>;
      } finally {
        file.abort();
      }
    });
    if (opts.out === '-') return;
    ctx.out.result({ exported: { file: opts.out, ...trailer } }, () => printable(`Exported ${String(trailer['count'])} entities to ${opts.out} (sha256 ${String(trailer['sha256'])}).`));
  },
};

const importCmd = {
  define: () =>
    withSettings(
      new Command('import')
        .description('import an export into an account: every line and the checksum are checked first; one transaction')
        .argument('<file>', 'an export file')
        .requiredOption('-u, --user <user>', 'the account (id or email)')
        .addOption(new Option('-m, --mode <mode>', 'replace: the account’s data becomes the file’s (its devices reset); merge: each line becomes a new version').choices(['replace', 'merge']).makeOptionMandatory()),
      'sync import',
    ),
  async run(ctx: Context, opts: { user: string; mode: 'replace' | 'merge' }, file: string): Promise<void> {
    const path = resolve(ctx.cwd, file);
    await requireFile(path, 'Export');
    const out = await withRegistryPlugins(ctx, 'sync import', async (host) => host.service(SYNC_ADMIN_V1).importFile(await userId(host, opts.user), opts.mode, createReadStream(path), 'cli:sync import'));
    ctx.out.result({ imported: { file, mode: opts.mode, ...out } }, () => printable(`Imported ${out.imported} entities from ${file} (${opts.mode}); the account's head is now ${out.head}.`));
  },
};

const stats = {
  define: () => withSettings(new Command('stats').description('counts of accounts, entities, tombstones, open conflicts and devices (never payloads)').option('-u, --user <user>', 'one account (id or email)'), 'sync stats'),
  async run(ctx: Context, opts: { user?: string }): Promise<void> {
    const s = await withRegistryPlugins(ctx, 'sync stats', async (host) => host.service(SYNC_ADMIN_V1).stats(opts.user ? await userId(host, opts.user) : undefined));
    ctx.out.result({ stats: s }, () => `${s.users} account(s), ${s.entities} entities, ${s.tombstones} tombstones, ${s.conflicts_open} open conflicts, ${s.devices} devices.`);
  },
};

const positive = (name: string, max: number) => (raw: string) => {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > max) throw new IqpError('IQP_E_USAGE', `--${name} must be a whole number from 1 to ${max}.`, { [name]: raw });
  return n;
};

const simulate = {
  define: () =>
    new Command('simulate')
      .description('simulated devices (the real sync client) against a real registry, with offline periods, lost, duplicated and late answers, server kills mid-push, token expiry, skewed clocks and compaction; checks that nothing is lost and every device converges')
      .option('--users <n>', 'accounts', positive('users', 100), 2)
      .option('--devices <n>', 'devices per account', positive('devices', 50), 3)
      .option('--ops <n>', 'steps (edits, syncs, faults) per run', positive('ops', 1_000_000), 200)
      .option('--seed <n>', 'the first seed (default: random, printed)')
      .option('--seeds <n>', 'runs, with consecutive seeds, on one registry', positive('seeds', 100_000), 1)
      .option('--no-faults', 'a clean network and no server kills'),
  async run(ctx: Context, opts: { users: number; devices: number; ops: number; seed?: string; seeds: number; faults: boolean }): Promise<number> {
    if (opts.seed !== undefined && !/^\d{1,10}$/.test(opts.seed)) throw new IqpError('IQP_E_USAGE', '--seed must be a whole number.', { seed: opts.seed });
    const first = opts.seed !== undefined ? Number(opts.seed) >>> 0 : randomInt(2 ** 31);
    const { simulate: run } = await import('../sync-sim/sim.js');
    const { SimServer } = await import('../sync-sim/server.js');
    const dir = await mkdtemp(join(tmpdir(), 'iqp-sync-sim-'));
    const server = new SimServer(dir);
    const reports = [];
    try {
      await server.start();
      for (let i = 0; i < opts.seeds; i++) {
        const seed = (first + i) >>> 0;
        const r = await run({ users: opts.users, devices: opts.devices, ops: opts.ops, seed, faults: opts.faults, server });
        reports.push(r);
        ctx.out.note(
          `seed ${seed}: ${r.ok ? 'ok' : 'FAILED'} · ${r.stats.writes} writes, ${r.stats.conflicts} conflicts, ${r.stats.resets} resets, ${r.stats.crashes} app crashes, ${r.stats.serverKills} server kills, ${r.stats.timeJumps} time jumps · faults: ${r.stats.faults.dropped} lost, ${r.stats.faults.duplicated} duplicated, ${r.stats.faults.expired} expired tokens`,
        );
        if (!r.ok) break;
      }
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
    const failed = reports.find((r) => !r.ok);
    ctx.out.result({ seeds: reports.length, first_seed: first, ok: !failed, failed: failed ?? null, reports: reports.map((r) => ({ seed: r.seed, ok: r.ok, stats: r.stats })) }, () =>
      failed
        ? printable(`FAILED at seed ${failed.seed}: ${failed.violation}\nReplay: iqp sync simulate --users ${opts.users} --devices ${opts.devices} --ops ${opts.ops} --seed ${failed.seed}${opts.faults ? '' : ' --no-faults'}`)
        : `${reports.length} run(s) from seed ${first}: every invariant held.`,
    );
    return failed ? 1 : 0;
  },
};

export const syncGroup: CommandGroup = {
  group: () => new Command('sync').description('manage the sync plugin’s data (on the registry host), and simulate devices against a registry'),
  commands: [compact, exportCmd, importCmd, stats, simulate],
};
