import { Command } from 'commander';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { trackTemp, writeFileAtomic } from '../atomic.js';
import { buildTime, type Context } from '../cli/context.js';
import { formatBytes } from '../cli/output.js';
import { buildPack } from '../pack/build.js';
import { packFileName } from '../pack/format.js';
import { formatPublicKeyFile, formatSecretKeyFile, generateKeyPair } from '../pack/minisign.js';
import { readSource } from '../pack/source.js';
import { verifyPackFile } from '../pack/verify.js';
import { TEMPLATE_NAMES } from '../pack/requirements.js';
import { registryDemo } from './demo-registry.js';
import { scaffold } from './init.js';

interface Options {
  dir?: string;
}

export function define(): Command {
  return new Command('demo')
    .description(
      'run the whole toolchain end to end on the built-in templates: keygen, init, build, inspect, verify; publish and pull through a local registry; then a release: create, attach, validate, sign, publish, latest, pull, deprecate; then app accounts with the auth plugin: register, verify, sign in, refresh, sign out; then the sync plugin: that user’s phone and tablet push, pull, merge, resolve a conflict and converge',
    )
    .option('--dir <dir>', 'work in this folder and keep it (default: a temporary folder, removed at the end)');
}

/** What to try next, from a fresh clone (`npx` finds the iqp of the clone): the demo's own files are gone. */
const NEXT_STEPS = [
  'Next, with your own content:',
  '  npx iqp keygen --out signing                         # signing.pub to share, signing.key to keep private',
  '  npx iqp init my-pack --template translation --yes    # or recitation, dataset, deck',
  '  npx iqp build my-pack --key signing.key',
  '  npx iqp verify *.iqp --pubkey signing.pub',
  '  npx iqp demo --dir demo                              # the demo again, keeping its files and registry',
];

export async function run(ctx: Context, opts: Options): Promise<number> {
  if (opts.dir) {
    const work = resolve(ctx.cwd, opts.dir);
    await mkdir(work, { recursive: true });
    return demo(ctx, work, true);
  }
  // A temporary folder is removed however the demo ends: done, failed, or interrupted (a signal).
  const work = await mkdtemp(join(tmpdir(), 'iqp-demo-'));
  const untrack = trackTemp(work);
  try {
    return await demo(ctx, work, false);
  } finally {
    await rm(work, { recursive: true, force: true });
    untrack();
  }
}

async function demo(ctx: Context, work: string, kept: boolean): Promise<number> {
  const say = (line: string) => ctx.out.note(line);
  say(`iqp demo in ${work}`);

  const key = generateKeyPair();
  const keyBase = join(work, 'demo-signing');
  // A demo key has no passphrase so the demo runs unattended; real keys should have one.
  writeFileAtomic(`${keyBase}.key`, await formatSecretKeyFile(key, null), 0o600);
  writeFileAtomic(`${keyBase}.pub`, formatPublicKeyFile(key));
  say(`1. keygen   key ${key.keyId} → demo-signing.pub / demo-signing.key`);

  const packs: { template: string; path: string; package_id: string; version: string; size_bytes: number; sha256: string; signer_key_id: string | null; rows: number }[] = [];
  for (const template of TEMPLATE_NAMES) {
    const dir = join(work, template);
    await scaffold(template, dir, {});
    const source = await readSource(dir);
    const out = join(work, packFileName(source.authored.package_id, source.authored.version));
    const built = await buildPack({ source, secretKey: key, level: ctx.config.level, threads: ctx.config.threads, outPath: out, createdAt: buildTime(ctx) });
    const report = await verifyPackFile(out, { trustedKeys: [key] });
    const m = built.manifest;
    const rows = m.tables.reduce((n, t) => n + t.row_count, 0);
    say(`2. init     ${template.padEnd(12)} → ${template}/`);
    say(`3. build    ${m.package_id}@${m.version}: ${m.tables.length} tables, ${rows} rows → ${formatBytes(built.size_bytes)}`);
    say(`4. inspect  tables ${m.tables.map((t) => `${t.name}(${t.row_count})`).join(', ')}`);
    say(`5. verify   OK, signed by ${report.signerKeyId}, sha256 ${report.archive.sha256.slice(0, 16)}…`);
    packs.push({ template, path: out, package_id: m.package_id, version: m.version, size_bytes: built.size_bytes, sha256: built.sha256, signer_key_id: report.signerKeyId, rows });
  }
  const registry = await registryDemo(ctx, work, key, packs.map((p) => p.path), say);
  // The packs' lines as columns: name, size, rows, signer.
  const names = packs.map((p) => `${p.package_id}@${p.version}`);
  const nameWidth = Math.max(...names.map((n) => n.length));
  const rowsWidth = Math.max(...packs.map((p) => String(p.rows).length));
  ctx.out.result({ ok: true, dir: work, kept, key_id: key.keyId, packs, registry }, () =>
    [
      `Demo complete: ${packs.length} packs built, inspected and verified in ${kept ? work : 'a temporary folder (now removed)'}`,
      ...packs.map(
        (p, i) =>
          `  ${names[i]!.padEnd(nameWidth)}  ${formatBytes(p.size_bytes).padStart(9)}  ${String(p.rows).padStart(rowsWidth)} rows  signed ${p.signer_key_id}`,
      ),
      `  published all ${registry.published.length} to a local registry and pulled ${registry.pulled.package_id}@${registry.pulled.version} back, verified`,
      `  release ${registry.release.id}: failed validation (${registry.release.validation_failures.join(', ')}), then passed, was signed (sequence ${registry.release.sequence}), pulled (${registry.release.pulled.length} packs) and deprecated`,
      `  app account ${registry.accounts.email}: registered, verified with the mailed code, signed in on a device, refreshed (token ${registry.accounts.refresh_rotated ? 'rotated' : 'not rotated'}) and signed out`,
      `  sync: ${registry.accounts.sync.devices.join(' and ')} merged offline edits field by field, one conflict kept both values and was resolved; both devices ${registry.accounts.sync.converged ? 'converged on' : 'DID NOT converge on'} the export checksum (${registry.accounts.sync.entities} entities)`,
      ...(kept
        ? [
            `Try: npx iqp inspect ${packs[0]!.path}`,
            `     npx iqp verify ${packs[0]!.path} --pubkey ${keyBase}.pub`,
            `     npx iqp server start --data ${registry.data_dir}    # the demo registry, with its packs and the auth and sync plugins`,
            `     npx iqp users list --data ${registry.data_dir}      # its app accounts`,
            `     npx iqp sync stats --data ${registry.data_dir}      # their synced data (counts, never payloads)`,
          ]
        : NEXT_STEPS),
    ].join('\n'),
  );
  return 0;
}
