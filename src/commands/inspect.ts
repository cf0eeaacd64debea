import { Command } from 'commander';
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import type { Context } from '../cli/context.js';
import { withSettings } from '../cli/setting-options.js';
import { requireFile } from '../files.js';
import { formatBytes, formatCount, printable } from '../cli/output.js';
import { limitsWithMaxContent } from '../pack/format.js';
import { parseSignature } from '../pack/minisign.js';
import { readPack } from '../pack/reader.js';

export function define(): Command {
  return withSettings(new Command('inspect').description('show a pack’s manifest, files, tables and signer without extracting it').argument('<pack>', '.iqp file'), 'inspect')
    .addHelpText('after', '\ninspect reads the pack as a stream and checks its structure and hashes; it does not check the signature (use `iqp verify`).');
}

export async function run(ctx: Context, _opts: unknown, packArg: string): Promise<void> {
  const path = resolve(ctx.cwd, packArg);
  await requireFile(path, 'Pack');
  const limits = limitsWithMaxContent(ctx.config.maxContentBytes);
  const contents = await readPack(createReadStream(path, { highWaterMark: 1024 * 1024 }), { limits });
  const sig = contents.signature ? parseSignature(contents.signature) : null;
  const m = contents.manifest;
  ctx.out.result(
    {
      path,
      manifest: m,
      archive: contents.archive,
      entries: contents.entries,
      signature: sig ? { key_id: sig.keyId, algorithm: sig.algorithm, trusted_comment: sig.trustedComment } : null,
    },
    () => {
      // Every string of the manifest comes from the pack's author: escaped before it reaches a terminal.
      const p = printable;
      const lines = [
        `${p(m.name)}`,
        `  ${p(m.package_id)}@${p(m.version)}  type ${p(m.package_type)}, language ${p(m.language_code)}, needs app ≥ ${p(m.min_app_version)}`,
        `  created ${p(m.created_at)}, format ${m.format}`,
      ];
      if (m.description) lines.push(`  ${p(m.description)}`);
      if (m.license) lines.push(`  license: ${p(m.license)}`);
      if (m.attribution) lines.push(`  attribution: ${p(m.attribution)}`);
      lines.push(`  archive: ${formatBytes(contents.archive.size_bytes)}, sha256 ${contents.archive.sha256}`);
      lines.push(`  signer: ${sig ? `key ${p(sig.keyId)} (not checked here; run iqp verify)` : 'none: the pack is unsigned'}`);
      lines.push('Files:');
      for (const e of contents.entries) lines.push(`  ${p(e.path).padEnd(24)} ${formatBytes(e.size).padStart(10)}  ${e.sha256}`);
      lines.push('Tables:');
      for (const t of m.tables) lines.push(`  ${p(t.name).padEnd(24)} ${formatCount(t.row_count).padStart(10)} rows  (${t.columns.map(p).join(', ')})`);
      return lines.join('\n');
    },
  );
}
