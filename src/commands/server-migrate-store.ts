/**
 * `iqp server migrate-store [--dry-run]`: moves the registry in the data directory to the storage
 * the configuration names (database_url, blob_store = s3 and its s3_* settings: the ones `server
 * start` will run with afterwards), so there is no second way to name a target, and credentials
 * never come from a flag. The work is server/migrate-store/; this file shows it.
 */
import { Command } from 'commander';
import type { Context } from '../cli/context.js';
import { formatBytes } from '../cli/output.js';
import { withSettings } from '../cli/setting-options.js';
import { maskPassword } from '../cli/setting-types.js';
import { storageChoice } from '../../server/config.js';
import type { MigrateStoreResult } from '../../server/migrate-store/index.js';

type Shown = Omit<MigrateStoreResult, 'database'> & { database: (NonNullable<MigrateStoreResult['database']> & { to: string }) | null };

function summary(r: Shown): string {
  const lines = [
    r.dry_run
      ? `Dry run: nothing was written. The registry in ${r.data_dir} (registry id ${r.registry_id}) would move:`
      : `Moved the registry in ${r.data_dir} (registry id ${r.registry_id}) in ${(r.duration_ms / 1000).toFixed(1)} s:`,
  ];
  if (r.database) {
    const { to, tables, rows } = r.database;
    lines.push(`  database → ${to}: ${tables.length} tables, ${rows} rows${r.dry_run ? '' : ', every table holding as many rows as in registry.sqlite'}`);
  }
  if (r.blobs) {
    const b = r.blobs;
    lines.push(
      r.dry_run
        ? `  blobs    → ${b.to}: ${b.to_copy} to copy, ${b.skipped} already there (${formatBytes(b.bytes_total)} referenced)`
        : `  blobs    → ${b.to}: ${b.copied} copied (${formatBytes(b.bytes_copied)}), ${b.skipped} already there; all ${b.referenced} present at their size`,
    );
  }
  if (r.source_in_use) lines.push(`  Stop the registry first: ${r.source_in_use}`);
  lines.push(
    r.dry_run
      ? 'Run it again without --dry-run in a maintenance window, with the registry stopped (docs/scaling.md).'
      : `${r.data_dir} is unchanged: it is the way back. Next: start the registry with these settings (iqp server start) and check it (docs/scaling.md).`,
  );
  return lines.join('\n');
}

export const migrateStoreCommand = {
  define(): Command {
    const cmd = new Command('migrate-store')
      .description('move the registry in the data directory to the PostgreSQL database (database_url) and/or bucket (blob_store = s3) configured; the data directory is left as it was')
      .option('--dry-run', 'check everything and say what would move, writing nothing');
    return withSettings(cmd, 'server migrate-store');
  },
  async run(ctx: Context, opts: { dryRun?: boolean }): Promise<void> {
    const storage = storageChoice(ctx.config);
    const spinner = ctx.out.options.decorate ? await ctx.out.spinner('Checking the registry…') : null;
    const progress = (line: string) => (spinner ? spinner.text(line) : ctx.out.note(line));
    // Loaded here: the copy's PostgreSQL and S3 clients would otherwise load with every `iqp server` command.
    const { migrateStore } = await import('../../server/migrate-store/index.js');
    const result = await migrateStore({ dataDir: ctx.config.dataDir, storage, dryRun: Boolean(opts.dryRun), progress }).finally(() => spinner?.stop());
    const url = ctx.config.databaseUrl;
    const shown: Shown = { ...result, database: result.database && url !== null ? { to: maskPassword(url), ...result.database } : null };
    ctx.out.result(shown, () => summary(shown));
  },
};
