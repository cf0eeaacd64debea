import { Command } from 'commander';
import { resolve } from 'node:path';
import type { Context } from '../cli/context.js';
import { loadPublicKeys } from '../cli/keys.js';
import { formatBytes } from '../cli/output.js';
import { IqpError } from '../errors.js';
import { DEFAULT_LIMITS } from '../pack/format.js';
import { verifyPackFile } from '../pack/verify.js';

interface Options {
  pubkey: string[];
  allowUnsigned?: boolean;
  maxSize?: string;
}

export function define(): Command {
  return new Command('verify')
    .description('check a pack completely: structure, sizes, hashes, manifest schema, signature and content.sqlite')
    .argument('<pack>', '.iqp file')
    .option('-p, --pubkey <file>', 'trusted public key (repeatable; adds to IQP_TRUSTED_KEYS / the config file’s "trusted_keys")', (v: string, prev: string[]) => [...prev, v], [])
    .option('--allow-unsigned', 'accept a pack without a signature (everything else is still checked)')
    .option('--max-size <bytes>', 'largest content.sqlite to accept (default: max_content_bytes, 16 GiB)')
    .addHelpText('after', '\nExit status: 0 when every check passes, 1 when one fails (the error code says which), 2 for usage errors.');
}

export function parseMaxSize(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new IqpError('IQP_E_USAGE', `--max-size must be a positive number of bytes (got ${JSON.stringify(raw)}).`);
  return n;
}

export async function run(ctx: Context, opts: Options, packArg: string): Promise<void> {
  const path = resolve(ctx.cwd, packArg);
  const trustedKeys = await loadPublicKeys(ctx, [...opts.pubkey, ...ctx.config.trustedKeys]);
  const maxContentBytes = parseMaxSize(opts.maxSize, ctx.config.maxContentBytes);
  const spinner = await ctx.out.spinner(`Verifying ${packArg}…`);
  let report;
  try {
    report = await verifyPackFile(path, {
      trustedKeys,
      allowUnsigned: Boolean(opts.allowUnsigned),
      limits: { ...DEFAULT_LIMITS, maxContentBytes },
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
