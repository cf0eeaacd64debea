import { Command } from 'commander';
import type { Context } from '../cli/context.js';
import { withRegistry } from '../cli/registry.js';
import { withSettings } from '../cli/setting-options.js';
import { formatRef, matchVersions, parsePackRef } from '../client/refs.js';
import type { ManifestResponse, PackVersions } from '../client/types.js';
import { IqpError } from '../errors.js';

interface Options {
  message?: string;
  undo?: boolean;
}

export function define(): Command {
  const cmd = new Command('deprecate')
    .description('mark published versions as deprecated (apps stop being offered them), or undo that')
    .argument('<ref>', 'pack id with a version or semver range: id@1.2.0, id@"<2.0.0", or id alone for every version')
    .option('-m, --message <text>', 'why, shown to users of the pack ("" un-deprecates)')
    .option('--undo', 'un-deprecate (same as --message "")');
  return withSettings(cmd, 'deprecate').addHelpText('after', '\nA range matches pre-releases too: id@"<2.0.0" includes 2.0.0-beta.1. Needs a publisher or admin token.');
}

async function deprecationMessage(ctx: Context, opts: Options): Promise<string> {
  if (opts.undo) {
    if (opts.message !== undefined && opts.message !== '') throw new IqpError('IQP_E_USAGE', '--undo and --message contradict each other.');
    return '';
  }
  if (opts.message !== undefined) return opts.message;
  return ctx.prompt.input('--message', 'Deprecation message (shown to users; empty to un-deprecate)', {
    validate: (v) => (v.trim() === '' ? 'say why, or pass --undo' : true),
  });
}

export async function run(ctx: Context, opts: Options, refArg: string): Promise<void> {
  const ref = parsePackRef(refArg);
  const message = await deprecationMessage(ctx, opts);
  const wanted = message === '' ? null : message;
  const results = await withRegistry(ctx, { token: true }, async (client) => {
    const id = encodeURIComponent(ref.id);
    const listed = await client.json<PackVersions>({ method: 'GET', path: `/v1/packs/${id}` });
    const matches = matchVersions(listed.versions, ref);
    if (matches.length === 0) {
      throw new IqpError('IQP_E_NOT_FOUND', `No version of ${ref.id} matches ${ref.spec} (published: ${listed.versions.map((v) => v.version).join(', ')}).`, {
        package_id: ref.id,
        spec: ref.spec,
      });
    }
    const out: { version: string; status: string; deprecated_message: string | null; changed: boolean }[] = [];
    for (const v of matches) {
      // Already as asked: leave it, so the audit log records only real changes.
      if (v.deprecated_message === wanted) {
        out.push({ version: v.version, status: v.status, deprecated_message: v.deprecated_message, changed: false });
        continue;
      }
      const updated = await client.json<ManifestResponse>({
        method: 'POST',
        path: `/v1/admin/packs/${id}/${encodeURIComponent(v.version)}/deprecate`,
        auth: true,
        json: { message },
      });
      out.push({ version: updated.version, status: updated.status, deprecated_message: updated.deprecated_message, changed: true });
    }
    return out;
  });
  ctx.out.result({ package_id: ref.id, spec: ref.spec, versions: results }, () =>
    [
      `${wanted === null ? 'Un-deprecated' : 'Deprecated'} ${formatRef(ref)}: ${results.length} version${results.length === 1 ? '' : 's'}`,
      ...results.map((r) => `  ${r.version.padEnd(14)} ${r.status}${r.deprecated_message ? `: ${r.deprecated_message}` : ''}${r.changed ? '' : '  (unchanged)'}`),
    ].join('\n'),
  );
}
