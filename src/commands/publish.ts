import { Command } from 'commander';
import { basename, relative, resolve } from 'node:path';
import type { Context } from '../cli/context.js';
import { formatBytes } from '../cli/output.js';
import { progress } from '../cli/progress.js';
import { withRegistry } from '../cli/registry.js';
import { withSettings } from '../cli/setting-options.js';
import { publishFile, type Published } from '../client/publish.js';
import type { IqpError } from '../errors.js';
import { type Hints, withHint } from '../cli/hints.js';

/** The registry's refusals, with the fix a publisher has (the catalog's hints are written for verify and pull). */
const HINTS: Hints = {
  IQP_E_PACK_UNSIGNED: 'The registry accepts signed packs only: build it again with `iqp build --key <file.key>` (make a key with `iqp keygen`).',
  IQP_E_SIG_UNTRUSTED_KEY:
    'The registry does not know the key that signed this pack: an admin registers its public key with `iqp keys add <file.pub>`, or sign with a key already listed by `iqp keys list`.',
};

type Outcome = (Published & { ok: true }) | { ok: false; path: string; status: 'failed'; error: ReturnType<IqpError['toJSON']> };

export function define(): Command {
  const cmd = new Command('publish')
    .description('upload packs to the registry, which verifies each one before accepting it')
    .argument('<pack...>', '.iqp files');
  return withSettings(cmd, 'publish').addHelpText(
    'after',
    '\nVersions are immutable: re-publishing the same bytes is fine ("already published"), different bytes under a published version fail with IQP_E_VERSION_EXISTS.\nEvery pack is tried; the exit status is that of the first failure.',
  );
}

export async function run(ctx: Context, _opts: unknown, packs: string[]): Promise<number> {
  const outcomes: Outcome[] = [];
  const failures: IqpError[] = [];
  await withRegistry(ctx, { token: true }, async (client) => {
    for (const arg of packs) {
      const path = resolve(ctx.cwd, arg);
      const label = `Uploading ${basename(path)}`;
      const bar = await progress(ctx.out, label);
      const onProgress = (sent: number, total: number) =>
        sent < total ? bar.update(sent, total) : bar.text(`${label}: sent ${formatBytes(total)}; the registry is verifying it…`);
      try {
        const published = await publishFile(client, path, onProgress);
        bar.stop();
        outcomes.push({ ok: true, ...published });
      } catch (err) {
        bar.stop();
        const coded = withHint(err, HINTS);
        failures.push(coded);
        outcomes.push({ ok: false, path, status: 'failed', error: coded.toJSON() });
      }
    }
  });
  const shown = (path: string) => relative(ctx.cwd, path) || path;
  ctx.out.result({ ok: failures.length === 0, packs: outcomes }, () =>
    outcomes
      .filter((o): o is Extract<Outcome, { ok: true }> => o.ok)
      .map((o) => {
        const what = o.status === 'published' ? 'published' : 'already published (identical)';
        return `${what}  ${o.package_id}@${o.version}  ${formatBytes(o.size_bytes)}, sha256 ${o.sha256.slice(0, 16)}…, signed by ${o.signer_key_id}  (${shown(o.path)})`;
      })
      .join('\n'),
  );
  // With --json the failures are in the one document; for people they go to stderr, as errors do.
  for (const err of failures) ctx.out.error(err);
  if (failures.length > 0 && packs.length > 1) ctx.out.note(`${packs.length - failures.length} of ${packs.length} packs published; ${failures.length} failed.`);
  return failures[0]?.exitCode ?? 0;
}
