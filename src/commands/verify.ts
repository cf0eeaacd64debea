import { Command } from 'commander';
import { resolve } from 'node:path';
import type { Context } from '../cli/context.js';
import { withSettings } from '../cli/setting-options.js';
import { loadPublicKeys } from '../cli/keys.js';
import { formatBytes } from '../cli/output.js';
import { requireFile } from '../files.js';
import { limitsWithMaxContent } from '../pack/format.js';
import { verifyPackFile } from '../pack/verify.js';

interface Options {
  allowUnsigned?: boolean;
}

export function define(): Command {
  const cmd = new Command('verify')
    .description('check a pack completely: structure, sizes, hashes, manifest schema, signature and content.sqlite')
    .argument('<pack>', '.iqp file');
  return withSettings(cmd, 'verify')
    .option('--allow-unsigned', 'accept a pack without a signature (everything else is still checked)')
    .addHelpText('after', '\nExit status: 0 when every check passes, 1 when one fails (the error code says which), 2 for usage errors.');
}

export async function run(ctx: Context, opts: Options, packArg: string): Promise<void> {
  const path = resolve(ctx.cwd, packArg);
  await requireFile(path, 'Pack');
  const trustedKeys = await loadPublicKeys(ctx, ctx.config.trustedKeys);
  const spinner = await ctx.out.spinner(`Verifying ${packArg}…`);
  let report;
  try {
    report = await verifyPackFile(path, {
      trustedKeys,
      allowUnsigned: Boolean(opts.allowUnsigned),
      limits: limitsWithMaxContent(ctx.config.maxContentBytes),
    });
  } catch (err) {
    spinner.stop();
    throw err;
  }
  spinner.stop();
  const m = report.manifest;
  ctx.out.result(
    {
      ok: true,
      path,
      package_id: m.package_id,
      version: m.version,
      size_bytes: report.archive.size_bytes,
      sha256: report.archive.sha256,
      signer_key_id: report.signerKeyId,
      entries: report.entries,
      tables: m.tables,
    },
    () =>
      [
        `OK ${m.package_id}@${m.version}  (${formatBytes(report.archive.size_bytes)}, sha256 ${report.archive.sha256})`,
        report.signerKeyId ? `  signature: good, key ${report.signerKeyId}` : '  signature: none (accepted with --allow-unsigned)',
        `  entries: ${report.entries.map((e) => e.path).join(', ')} — sizes and SHA-256 match`,
        `  content.sqlite: integrity_check ok, ${m.tables.length} tables as the manifest says`,
      ].join('\n'),
  );
}
