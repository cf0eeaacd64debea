import { Command } from 'commander';
import { relative, resolve } from 'node:path';
import type { Context } from '../cli/context.js';
import { loadPublicKeys } from '../cli/keys.js';
import { formatBytes } from '../cli/output.js';
import { progress } from '../cli/progress.js';
import { hinted, RELEASE_HINTS } from '../cli/hints.js';
import { withRegistry } from '../cli/registry.js';
import { withSettings } from '../cli/setting-options.js';
import { pullPack } from '../client/pull.js';
import { parsePackRef } from '../client/refs.js';
import { limitsWithMaxContent } from '../pack/format.js';
import { IqpError } from '../errors.js';
import { requireFolder } from '../files.js';
import { isSemver } from '../pack/manifest.js';
import { pullRelease } from '../client/release-pull.js';
import { TrustStore } from '../client/trust.js';
import { REGISTRY_ID } from '../pack/release-manifest.js';

/** Its settings (keys, max_content_bytes, registry, release keys, trust state) arrive in ctx.config. */
interface Options {
  out?: string;
  release?: string;
  channel: string;
  appVersion?: string;
  registryId?: string;
}

export function define(): Command {
  const cmd = new Command('pull')
    .description('download a pack, check it completely, and keep it only if every check passes')
    .argument('[ref]', 'pack id, optionally with a version or range: id, id@1.2.0, id@^1.2')
    .option('-o, --out <dir>', 'folder for <id>-<version>.iqp (default: the current folder)')
    .option('--release <latest|id>', 'pull every pack of a signed release instead of one pack')
    .option('-c, --channel <channel>', 'release channel (with --release)', 'stable')
    .option('-a, --app-version <semver>', 'the app version the release is for (with --release latest)')
    .option('--registry-id <id>', 'with --release: refuse manifests signed for any other registry (its id: GET /v1/channels)');
  return withSettings(cmd, 'pull').addHelpText(
    'after',
    [
      '',
      'Without a version: the newest published, non-deprecated, non-pre-release version.',
      'The download goes to <out>/.<id>-<version>.iqp.part and resumes from it when run again.',
      'A pack already at <out>/<id>-<version>.iqp with the announced size and SHA-256 is checked and kept: nothing is downloaded.',
      'Trusted keys: --pubkey files and trusted_keys; when none are pinned, the registry’s own publisher keys (GET /v1/keys).',
      '',
      'With --release: the release manifest must be signed by a pinned release key, for the channel (and, with --release <id>, the release) asked for, unexpired, and not older than',
      'the last one accepted from this registry (by its signed registry id, whatever its URL) and channel (docs/client-verification.md); every pack is checked',
      'against it before any is moved into place, and only then is the trust state saved.',
    ].join('\n'),
  );
}

function resumeNote(r: { resumed_from: number; restarted: boolean }): string {
  if (r.resumed_from === 0) return '';
  return r.restarted ? `; a partial file of ${r.resumed_from} bytes did not fit and was downloaded again` : `; resumed from byte ${r.resumed_from}`;
}

/** --out, checked before anything is downloaded. */
function outFolder(ctx: Context, opts: Options): string {
  const outDir = resolve(ctx.cwd, opts.out ?? '.');
  requireFolder(outDir, '--out');
  return outDir;
}

async function runRelease(ctx: Context, opts: Options): Promise<void> {
  const spec = opts.release!;
  if (spec !== 'latest' && !/^\d{1,15}$/.test(spec)) throw new IqpError('IQP_E_USAGE', '--release takes "latest" or a release id.');
  if (opts.appVersion !== undefined && !isSemver(opts.appVersion)) throw new IqpError('IQP_E_INVALID_VERSION', `--app-version ${JSON.stringify(opts.appVersion)} is not semver.`);
  if (opts.registryId !== undefined && !REGISTRY_ID.test(opts.registryId)) throw new IqpError('IQP_E_USAGE', `--registry-id is 32 lowercase hex digits (GET /v1/channels shows it); got ${JSON.stringify(opts.registryId)}.`);
  const releaseKeys = await loadPublicKeys(ctx, ctx.config.trustedReleaseKeys);
  const trust = new TrustStore(ctx.config.trustState);
  const outDir = outFolder(ctx, opts);
  const bar = await progress(ctx.out, 'Downloading release');
  let r;
  try {
    r = await hinted(RELEASE_HINTS, () => withRegistry(ctx, { token: false }, (client) =>
      pullRelease(client, {
        release: spec === 'latest' ? 'latest' : Number(spec),
        channel: opts.channel,
        appVersion: opts.appVersion ?? null,
        releaseKeys,
        registryId: opts.registryId ?? null,
        trust,
        outDir,
        now: ctx.now(),
        limits: limitsWithMaxContent(ctx.config.maxContentBytes),
        onProgress: (done, total) => bar.update(done, total),
        onNote: (message) => ctx.out.note(message),
        onVerify: () => bar.text('Verifying…'),
      }),
    ));
  } finally {
    bar.stop();
  }
  if (r.deprecated_message !== null) ctx.out.warn(`release ${r.release_id} is deprecated: ${r.deprecated_message}`);
  ctx.out.result({ ok: true, ...r }, () =>
    [
      `Pulled release ${r.release_id} (${r.name}) from ${r.channel}: sequence ${r.sequence}${r.previous_sequence !== null ? ` (previously ${r.previous_sequence})` : ''}, signed by ${r.signer_key_id}, expires ${r.expires_at}`,
      ...r.packs.map((p) => `  ${p.role.padEnd(14)} ${p.package_id}@${p.version} → ${relative(ctx.cwd, p.path) || p.path}${p.downloaded ? '' : '  (already present)'}`),
      '  every pack: size and SHA-256 as the signed manifest says, structure, signature and content.sqlite checked',
    ].join('\n'),
  );
}

export async function run(ctx: Context, opts: Options, refArg: string | undefined): Promise<void> {
  if (opts.release !== undefined) {
    if (refArg !== undefined) throw new IqpError('IQP_E_USAGE', 'Pass either a pack or --release, not both.');
    return runRelease(ctx, opts);
  }
  if (refArg === undefined) throw new IqpError('IQP_E_USAGE', 'Name a pack to pull (id[@version]), or pass --release latest.');
  const ref = parsePackRef(refArg);
  const outDir = outFolder(ctx, opts);
  const pinnedKeys = await loadPublicKeys(ctx, ctx.config.trustedKeys);
  const limits = limitsWithMaxContent(ctx.config.maxContentBytes);
  const bar = await progress(ctx.out, `Downloading ${ref.id}`);
  let result;
  try {
    result = await withRegistry(ctx, { token: false }, (client) =>
      pullPack(client, {
        ref,
        outDir,
        pinnedKeys,
        limits,
        onProgress: (done, total) => bar.update(done, total),
        onNote: (message) => ctx.out.note(message),
        onVerify: () => bar.text(`Verifying ${ref.id}: structure, hashes, signature, content.sqlite…`),
      }),
    );
  } finally {
    bar.stop();
  }
  if (result.deprecated_message !== null) ctx.out.warn(`${result.package_id}@${result.version} is deprecated: ${result.deprecated_message}`);
  const r = result;
  const shown = relative(ctx.cwd, r.path) || r.path;
  ctx.out.result({ ok: true, ...r }, () =>
    [
      r.downloaded
        ? `Pulled ${r.package_id}@${r.version} → ${shown}  (${formatBytes(r.size_bytes)}, sha256 ${r.sha256})${r.replaced ? '; replaced the different file that was there' : ''}`
        : `${r.package_id}@${r.version} is already present at ${shown}  (${formatBytes(r.size_bytes)}, sha256 ${r.sha256}); nothing downloaded`,
      r.trust === 'pinned'
        ? `  signature: good, key ${r.signer_key_id} (pinned with --pubkey / trusted_keys)`
        : `  signature: good, key ${r.signer_key_id} (one of the registry’s publisher keys from GET /v1/keys; pin it with --pubkey for stronger assurance)`,
      `  size, SHA-256, structure and content.sqlite checked${resumeNote(r)}`,
    ].join('\n'),
  );
}
