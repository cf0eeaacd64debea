/**
 * `iqp release …`: group published packs into a release for one app version, validate it, and
 * publish it with a manifest signed here by the release manager's key (the registry never sees it).
 */
import { Command } from 'commander';
import type { Context } from '../cli/context.js';
import { loadPublicKeys, loadSecretKey } from '../cli/keys.js';
import { type Hints, hinted, RELEASE_HINTS } from '../cli/hints.js';
import { withRegistry } from '../cli/registry.js';
import { intFlag, withSettings } from '../cli/setting-options.js';
import { parsePackRef } from '../client/refs.js';
import { checkReleaseManifest } from '../client/release-pull.js';
import { describeSigned, ReleaseApi, type ReleaseManifestView, type ReleaseView, type ValidationReport } from '../client/releases.js';
import { IqpError } from '../errors.js';
import { isSemver } from '../pack/manifest.js';
import type { PublicKey } from '../pack/minisign.js';
import type { ReleaseManifest } from '../pack/release-manifest.js';
import type { CommandGroup, CommandModule } from './types.js';

function releaseId(raw: string): number {
  if (!/^\d{1,15}$/.test(raw) || Number(raw) < 1) throw new IqpError('IQP_E_USAGE', `A release id is a positive number (got ${JSON.stringify(raw)}); see iqp release list.`);
  return Number(raw);
}

const collect = (v: string, prev: string[]) => [...prev, ...v.split(',').map((x) => x.trim()).filter(Boolean)];

function describe(r: ReleaseView): string {
  const lines = [
    `Release ${r.id}: ${r.name}  (${r.channel}, ${r.status}${r.sequence !== null ? `, sequence ${r.sequence}` : ''})`,
    `  for apps ≥ ${r.min_app_version}; requires roles ${r.required_roles.join(', ')}${r.profile ? ` (profile ${r.profile})` : ''}`,
  ];
  if (r.notes) lines.push(`  notes: ${r.notes}`);
  if (r.artifacts.length === 0) lines.push('  no packs attached yet');
  for (const a of r.artifacts) lines.push(`  ${a.role.padEnd(14)} ${a.package_id}@${a.version}`);
  if (r.published_at) lines.push(`  published ${r.published_at}; manifest signed by ${r.signer_key_id}, expires ${r.expires_at}`);
  if (r.deprecated_at) lines.push(`  DEPRECATED ${r.deprecated_at}: ${r.deprecated_message ?? ''}`);
  return lines.join('\n');
}

function describeValidation(id: number, report: ValidationReport): string {
  const lines = [report.ok ? `Release ${id} is valid.` : `Release ${id} fails validation:`];
  for (const f of report.failures) lines.push(`  ✗ ${f.code}${f.role ? ` [${f.role}]` : ''}${f.artifact ? ` ${f.artifact}` : ''}: ${f.message}`);
  for (const w of report.warnings) lines.push(`  ! ${w.code}${w.role ? ` [${w.role}]` : ''}${w.artifact ? ` ${w.artifact}` : ''}: ${w.message}`);
  return lines.join('\n');
}

/** `checkedWith`: the pinned release key the signature was checked with, or null when it was not (the registry's word). */
function describeManifest(m: ReleaseManifestView, checkedWith: string | null): string {
  return [
    `Release ${m.release_id}: ${m.name}  (${m.channel}, sequence ${m.sequence}, ${m.status})`,
    `  for apps ≥ ${m.min_app_version}; signed by ${m.signer_key_id}; expires ${m.expires_at}${m.registry_id ? `; registry ${m.registry_id}` : ''}`,
    ...m.artifacts.map((a) => `  ${a.role.padEnd(14)} ${a.package_id}@${a.version}  ${a.size_bytes} bytes  sha256 ${a.sha256.slice(0, 16)}…`),
    checkedWith
      ? `  signature checked with the pinned release key ${checkedWith}, with the checks an app's pull makes (channel, expiry, app version)`
      : '  signature NOT checked: this is what the registry says; pass --release-key FILE (or set trusted_release_keys) to check it',
  ].join('\n');
}

/**
 * With pinned release keys: the signed manifest checked as `iqp pull --release` checks it (no
 * trust state), and the registry's summary of it held to what it signs. Returns the key id.
 */
function checkServed(ctx: Context, m: ReleaseManifestView, keys: readonly PublicKey[], channel: string, appVersion: string | null): string {
  const { manifest, keyId } = checkReleaseManifest(m, { channel, appVersion, releaseKeys: keys, now: ctx.now(), last: () => null });
  // What both say, in one comparable form (the served summary's artifacts carry URLs, the manifest's a path).
  const summary = (x: ReleaseManifestView | ReleaseManifest) =>
    JSON.stringify([x.release_id, x.channel, x.sequence, x.min_app_version, x.expires_at, x.artifacts.map((a) => [a.role, a.package_id, a.version, a.size_bytes, a.sha256, a.signer_key_id])]);
  if (summary(m) !== summary(manifest) || m.signer_key_id !== keyId || (m.registry_id !== null && m.registry_id !== manifest.registry_id)) {
    throw new IqpError('IQP_E_RELEASE_MANIFEST', `The registry's summary of release ${manifest.release_id} does not match the manifest it signed.`, { release_id: manifest.release_id });
  }
  return keyId;
}

/** The release commands' hints: RELEASE_HINTS, and the fix for a manifest the registry refuses to trust (the generic hint, --pubkey, is for packs). */
const COMMAND_HINTS: Hints = {
  ...RELEASE_HINTS,
  IQP_E_SIG_UNTRUSTED_KEY: (err) =>
    err.details?.['purpose'] === 'pack'
      ? 'That is a pack-signing key. Sign releases with the release key: pass its secret key file with --key (`iqp keys list` shows its public key as release), or set IQP_RELEASE_KEY or release_key.'
      : 'Sign with a release key the registry has (`iqp keys list` shows them as release): pass its secret key file with --key, or set IQP_RELEASE_KEY or release_key. An admin registers a new one with `iqp keys add <file.pub> --purpose release`.',
};

/** One subcommand that talks to the registry: definition plus body, with its settings' flags (--registry, --token, …). */
function command<O extends object>(
  make: () => Command,
  token: boolean,
  body: (ctx: Context, api: ReleaseApi, opts: O, ...args: string[]) => Promise<number | void>,
): CommandModule {
  return {
    define: () => {
      const cmd = make();
      return withSettings(cmd, `release ${cmd.name()}`);
    },
    run: (ctx: Context, opts: O, ...args: string[]) => hinted(COMMAND_HINTS, () => withRegistry(ctx, { token }, (client) => body(ctx, new ReleaseApi(client), opts, ...args))),
  };
}

const create = command<{ channel: string; minAppVersion: string; role: string[]; profile?: string; notes?: string }>(
  () =>
    new Command('create')
      .description('create a draft release')
      .argument('<name>', 'release name, unique per channel, e.g. 2026.11')
      .option('-c, --channel <channel>', 'release channel', 'stable')
      .requiredOption('--min-app-version <semver>', 'the oldest app version this release is for')
      .option('-r, --role <roles>', 'a role the release requires (repeatable or comma-separated), e.g. text,translation,recitation', collect, [])
      .option('--profile <name>', 'take the required roles from a release profile')
      .option('--notes <text>', 'release notes'),
  true,
  async (ctx, api, opts, name) => {
    if (!isSemver(opts.minAppVersion)) throw new IqpError('IQP_E_INVALID_VERSION', `--min-app-version ${JSON.stringify(opts.minAppVersion)} is not semver.`);
    const release = await api.create({
      name: name!,
      channel: opts.channel,
      min_app_version: opts.minAppVersion,
      ...(opts.role.length ? { roles: opts.role } : {}),
      ...(opts.profile ? { profile: opts.profile } : {}),
      ...(opts.notes ? { notes: opts.notes } : {}),
    });
    ctx.out.result(release, () => `${describe(release)}\nNext: iqp release attach ${release.id} <role> <pack>@<version>`);
  },
);

const attach = command<{ extraRole?: boolean }>(
  () =>
    new Command('attach')
      .description('attach a published pack version to a draft release, in one of the roles it requires')
      .argument('<id>', 'release id')
      .argument('<role>', 'role, e.g. translation')
      .argument('<pack>', 'pack id@version')
      .option('--extra-role', 'attach in a role the release does not require (refused otherwise, as a likely typo)'),
  true,
  async (ctx, api, opts, id, role, pack) => {
    const ref = parsePackRef(pack!);
    if (!ref.exact) throw new IqpError('IQP_E_USAGE', `Attach an exact version: ${ref.id}@<version>.`);
    const release = await api.attach(releaseId(id!), role!, ref.id, ref.spec!, opts.extraRole === true);
    ctx.out.result(release, () => describe(release));
  },
);

const detach = command<object>(
  () => new Command('detach').description('remove a pack from a draft release').argument('<id>', 'release id').argument('<role>', 'role').argument('<pack>', 'pack id'),
  true,
  async (ctx, api, _opts, id, role, pack) => {
    const release = await api.detach(releaseId(id!), role!, parsePackRef(pack!).id);
    ctx.out.result(release, () => describe(release));
  },
);

const validate = command<object>(
  () => new Command('validate').description('check a release: every required role filled once, packs published and not deprecated, app versions').argument('<id>', 'release id'),
  true,
  async (ctx, api, _opts, id) => {
    const n = releaseId(id!);
    const report = await api.validate(n);
    ctx.out.result({ release_id: n, ...report }, () => describeValidation(n, report));
    return report.ok ? 0 : 1;
  },
);

/** The release key and expiry for signing a manifest here: release_key (--key) and release_expiry_days (--expires-in). */
async function signingKey(ctx: Context) {
  const keyFile = ctx.config.releaseKey;
  if (!keyFile) {
    throw new IqpError('IQP_E_KEY_REQUIRED', 'Signing a release needs the release key: pass --key FILE or set IQP_RELEASE_KEY.', undefined, {
      hint: 'Pass --key with the release key file (a key added with `iqp keys add … --purpose release`), or set IQP_RELEASE_KEY or release_key in the config file.',
    });
  }
  return { key: await loadSecretKey(ctx, keyFile), days: ctx.config.releaseExpiryDays };
}

function signCommand(mode: 'publish' | 'resign'): CommandModule {
  return command<object>(
    () =>
      new Command(mode)
        .description(
          mode === 'publish'
            ? 'validate a draft, sign its manifest here with your release key, and publish it'
            : 'sign a published release again with a later expiry and the channel’s next sequence',
        )
        .argument('<id>', 'release id'),
    true,
    async (ctx, api, _opts, id) => {
      const n = releaseId(id!);
      const { key, days } = await signingKey(ctx);
      if (mode === 'publish') {
        const report = await api.validate(n);
        if (!report.ok) {
          ctx.out.note(describeValidation(n, report));
          throw new IqpError('IQP_E_RELEASE_INVALID', `Release ${n} fails validation; nothing was published.`, { failures: report.failures });
        }
      }
      const release = await api.sign(n, key, mode, days, ctx.now());
      ctx.out.result(release, () => `${mode === 'publish' ? 'Published' : 'Re-signed'} ${describe(release)}\n${describeSigned(release.signed)}`);
    },
  );
}

const deprecate = command<{ message?: string; rollbackTo?: string }>(
  () =>
    new Command('deprecate')
      .description('withdraw a published release: it drops out of latest at once')
      .argument('<id>', 'release id')
      .option('-m, --message <text>', 'why (shown to operators and in the audit log)')
      .option('--rollback-to <id>', 'in the same step, re-sign this previous release with the channel’s next sequence (needs --key), so clients that took the withdrawn one accept it'),
  true,
  async (ctx, api, opts, id) => {
    const n = releaseId(id!);
    const target = opts.rollbackTo === undefined ? null : releaseId(opts.rollbackTo);
    // Everything that can fail locally fails before the release is touched.
    const signing = target === null ? null : await signingKey(ctx);
    const message = opts.message ?? (await ctx.prompt.input('--message', 'Why is the release withdrawn?', { validate: (v) => (v.trim() ? true : 'say why') }));
    if (target === null || signing === null) {
      const release = await api.deprecate(n, message);
      // Deprecated now, it cannot be deprecated again with --rollback-to: re-signing the previous release is the way back.
      ctx.out.result(release, () => `${describe(release)}\nIf it was the newest release, re-sign the one to serve instead, as clients only move forward: iqp release resign <previous id> --key FILE.`);
      return;
    }
    const result = await api.rollback(n, message, target, signing.key, signing.days, ctx.now());
    ctx.out.result(result, () => `${describe(result.deprecated)}\nRolled back: re-signed ${describe(result.rolled_back_to)}\n${describeSigned(result.signed)}`);
  },
);

const latest = command<{ channel: string; appVersion?: string }>(
  () =>
    new Command('latest')
      .description('show the release an app version gets: the newest published, non-deprecated one it can use')
      .option('-c, --channel <channel>', 'release channel', 'stable')
      .option('-a, --app-version <semver>', 'the app version asking'),
  false,
  async (ctx, api, opts) => {
    if (opts.appVersion !== undefined && !isSemver(opts.appVersion)) throw new IqpError('IQP_E_INVALID_VERSION', `--app-version ${JSON.stringify(opts.appVersion)} is not semver.`);
    const keys = await loadPublicKeys(ctx, ctx.config.trustedReleaseKeys);
    const m = await api.latest(opts.channel, opts.appVersion ?? null);
    const checkedWith = keys.length > 0 ? checkServed(ctx, m, keys, opts.channel, opts.appVersion ?? null) : null;
    const { manifest_json: _m, signature: _s, ...shown } = m;
    ctx.out.result({ ...shown, signature_checked: checkedWith !== null, checked_with_key: checkedWith }, () => describeManifest(m, checkedWith));
  },
);

const list = command<{ channel?: string; status?: string; limit: number; cursor?: string; all?: boolean }>(
  () =>
    new Command('list')
      .description('list releases, newest first, a page at a time')
      .option('-c, --channel <channel>', 'only this channel')
      .option('--status <status>', 'only draft, published or deprecated')
      .option('--limit <n>', 'page size (1-500)', intFlag('--limit', 1, 500), 20)
      .option('--cursor <cursor>', 'continue after a previous page (its next_cursor)')
      .option('--all', 'follow every page'),
  true,
  async (ctx, api, opts) => {
    const { limit } = opts;
    const releases: ReleaseView[] = [];
    let cursor = opts.cursor;
    let paging;
    do {
      const page = await api.list({ ...(opts.channel ? { channel: opts.channel } : {}), ...(opts.status ? { status: opts.status } : {}), limit, ...(cursor ? { cursor } : {}) });
      releases.push(...page.items);
      paging = page.paging;
      cursor = paging.next_cursor ?? undefined;
    } while (opts.all && cursor);
    ctx.out.result({ releases, paging }, () =>
      [
        ...releases.map((r) => `${String(r.id).padStart(5)}  ${r.channel.padEnd(8)} ${r.status.padEnd(10)} ${r.name.padEnd(16)} apps ≥ ${r.min_app_version}  ${r.artifacts.length} pack(s)`),
        releases.length === 0 ? 'No releases.' : '',
        !opts.all && paging.has_more ? `More: iqp release list --cursor ${paging.next_cursor}` : '',
      ]
        .filter(Boolean)
        .join('\n'),
    );
  },
);

const show = command<object>(
  () => new Command('show').description('show a release with its packs and signature state').argument('<id>', 'release id'),
  true,
  async (ctx, api, _opts, id) => {
    const release = await api.get(releaseId(id!));
    ctx.out.result(release, () => describe(release));
  },
);

const profile = command<{ role: string[]; description?: string }>(
  () =>
    new Command('profile')
      .description('create or change a release profile: a named set of required roles')
      .argument('<name>', 'profile name, e.g. quran-app')
      .option('-r, --role <roles>', 'a required role (repeatable or comma-separated)', collect, [])
      .option('--description <text>', 'what the profile is for'),
  true,
  async (ctx, api, opts, name) => {
    if (opts.role.length === 0) throw new IqpError('IQP_E_MISSING_OPTION', 'A profile needs roles: pass --role.');
    const p = await api.putProfile(name!, opts.role, opts.description ?? '');
    ctx.out.result(p, () => `Profile ${p.name}: ${p.roles.join(', ')}`);
  },
);

const profiles = command<object>(
  () => new Command('profiles').description('list release profiles'),
  true,
  async (ctx, api) => {
    const all = await api.profiles();
    ctx.out.result({ profiles: all }, () => (all.length ? all.map((p) => `${p.name.padEnd(20)} ${p.roles.join(', ')}  ${p.description}`).join('\n') : 'No profiles.'));
  },
);

export const releaseGroup: CommandGroup = {
  group: () => new Command('release').description('group packs into releases for app versions, sign and publish them'),
  commands: [create, attach, detach, validate, signCommand('publish'), signCommand('resign'), deprecate, latest, list, show, profile, profiles],
};
