import { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { buildTime, type Context } from '../cli/context.js';
import { loadSecretKey } from '../cli/keys.js';
import { withSettings } from '../cli/setting-options.js';
import { formatBytes, formatCount, formatRate } from '../cli/output.js';
import { IqpError } from '../errors.js';
import { requireFile } from '../files.js';
import { buildPack } from '../pack/build.js';
import { packFileName } from '../pack/format.js';
import { startsLikePack } from '../pack/reader.js';
import { DATA_DIR, readAuthored, readSource, SCHEMA_FILE, SOURCE_FILE } from '../pack/source.js';

/** Its settings (key, level, threads, max_line_bytes) arrive in ctx.config, flags included. */
interface Options {
  key?: string;
  unsigned?: boolean;
  out?: string;
  content?: string;
  strict?: boolean;
}

export function define(): Command {
  return withSettings(new Command('build').description('build a signed .iqp pack from a pack source folder (iqp.json, schema.sql, data/)').argument('[dir]', 'pack source folder', '.'), 'build')
    .option('--unsigned', 'build without a signature (verify will then need --allow-unsigned)')
    .option('-o, --out <path>', 'output file, or an existing directory for <package_id>-<version>.iqp (a trailing slash always means a directory; default: current directory); an existing file is replaced only if it is a pack')
    .option('--content <file.sqlite>', 'pack this prebuilt SQLite database instead of loading data/ (iqp.json is still read)')
    .option('--strict', 'treat warnings as errors: a required table with no rows, manifest text still a template’s or a placeholder')
    .addHelpText('after', '\nSet SOURCE_DATE_EPOCH for a reproducible build: the same source and key then give a byte-identical pack.');
}

async function outputPath(ctx: Context, out: string | undefined, fileName: string): Promise<string> {
  if (!out) return join(ctx.cwd, fileName);
  const path = resolve(ctx.cwd, out);
  const info = await stat(path).catch(() => null);
  if (info?.isDirectory()) return join(path, fileName);
  // `-o packs/` names a folder: writing a file called "packs" instead would surprise everyone.
  if (out.endsWith('/') || out.endsWith(sep)) {
    throw new IqpError('IQP_E_FILE_NOT_FOUND', `--out ${out} names a folder, and ${path} is ${info ? 'not a folder' : 'missing'}.`, { path }, {
      hint: `Create the folder first (mkdir -p ${out}), or drop the trailing slash to name the pack file.`,
    });
  }
  return path;
}

/** The files a build reads (or that belong with them), as the user knows them. */
function inputsOf(dir: string, keyFile: string | null, contentFile: string | null): ReadonlyArray<readonly [string, string]> {
  const inputs: Array<readonly [string, string]> = [
    [join(dir, SOURCE_FILE), `the source’s ${SOURCE_FILE}`],
    [join(dir, SCHEMA_FILE), `the source’s ${SCHEMA_FILE}`],
  ];
  if (keyFile) inputs.push([keyFile, 'the signing key'], [`${keyFile.replace(/\.key$/, '')}.pub`, 'the signing key’s public key']);
  if (contentFile) inputs.push([contentFile, 'the --content database']);
  return inputs;
}

/**
 * Refuses an output that would destroy something: a file the build reads (the key, the source's
 * files, --content), anything in the source's data folder, or an existing file that is not a
 * pack. Replacing a pack is a rebuild, and fine; whether a file is a pack is read from its bytes.
 */
async function checkOutput(out: string, path: string, dir: string, inputs: ReadonlyArray<readonly [string, string]>): Promise<void> {
  const named = `--out ${out}: ${path}`;
  const elsewhere = 'Choose another --out for the pack (by default it goes to the current folder as <package_id>-<version>.iqp).';
  const inData = relative(join(dir, DATA_DIR), path);
  if (!inData.startsWith('..') && !isAbsolute(inData)) {
    throw new IqpError('IQP_E_USAGE', `${named} is inside the source’s data folder, whose files are what the build reads.`, { path }, { hint: elsewhere });
  }
  const info = await stat(path).catch(() => null);
  if (info === null) return;
  for (const [input, what] of inputs) {
    const other = await stat(input).catch(() => null);
    if (other?.dev === info.dev && other.ino === info.ino) {
      throw new IqpError('IQP_E_USAGE', `${named} is ${what} (${input}); the pack must not replace it.`, { path }, { hint: elsewhere });
    }
  }
  if (!info.isFile() || !(await startsLikePack(path))) {
    throw new IqpError('IQP_E_USAGE', `${named} exists and is not an .iqp pack; iqp build replaces only a pack (a rebuild).`, { path }, {
      hint: 'Choose another --out, or remove that file first if it is no longer needed.',
    });
  }
}

export async function run(ctx: Context, opts: Options, dirArg: string): Promise<void> {
  const dir = resolve(ctx.cwd, dirArg);
  if (opts.key && opts.unsigned) throw new IqpError('IQP_E_USAGE', '--key and --unsigned contradict each other.');
  const { level, threads, maxLineBytes } = ctx.config;
  const keyFile = opts.unsigned ? null : ctx.config.key;
  if (!keyFile && !opts.unsigned) throw new IqpError('IQP_E_KEY_REQUIRED');

  let source;
  if (opts.content) {
    const authored = await readAuthored(dir, `${join(dir, SOURCE_FILE)} does not exist (--content still needs the manifest fields).`);
    source = { authored, contentFile: resolve(ctx.cwd, opts.content) };
    await requireFile(source.contentFile, 'Content database');
  } else {
    source = await readSource(dir);
  }
  const outPath = await outputPath(ctx, opts.out, packFileName(source.authored.package_id, source.authored.version));
  // Before the passphrase is asked for: a refused --out should not cost typing it.
  await checkOutput(opts.out ?? '.', outPath, dir, inputsOf(dir, keyFile ? resolve(ctx.cwd, keyFile) : null, 'contentFile' in source ? source.contentFile : null));
  const secretKey = keyFile ? await loadSecretKey(ctx, keyFile) : null;

  const spinner = await ctx.out.spinner('Reading source…');
  let result;
  try {
    result = await buildPack(
      { source, secretKey, level, threads, maxLineBytes, outPath, createdAt: buildTime(ctx), strict: opts.strict === true },
      {
        onLoad: (p) => spinner.text(`Loading ${p.file}: ${formatCount(p.rows)} rows (${formatCount(p.totalRows)} in all)`),
        onPhase: (phase) => {
          if (phase === 'check') spinner.text('Checking content.sqlite (integrity_check)…');
          if (phase === 'hash') spinner.text('Hashing content.sqlite…');
        },
        onWrite: (done, total) => spinner.text(`Compressing: ${formatBytes(done)} of ${formatBytes(total)} (zstd -${level})`),
      },
    );
  } catch (err) {
    spinner.fail('Build failed; nothing was written.');
    throw err;
  }
  spinner.stop();
  // With --json the warnings are in the result instead: nothing goes to stderr.
  if (!ctx.out.json) for (const w of result.warnings) ctx.out.warn(`${w.message} (${w.code}; --strict makes this an error)`);
  const m = result.manifest;
  ctx.out.result(
    {
      path: result.path,
      package_id: m.package_id,
      version: m.version,
      size_bytes: result.size_bytes,
      sha256: result.sha256,
      manifest_sha256: result.manifestSha256,
      signer_key_id: result.keyId,
      level,
      rows_loaded: result.load?.rows ?? null,
      load_seconds: result.load?.seconds ?? null,
      rows_seconds: result.load?.rowsSeconds ?? null,
      load_threads: result.load?.threads ?? null,
      warnings: result.warnings,
      manifest: m,
    },
    () => {
      const rows = m.tables.reduce((n, t) => n + t.row_count, 0);
      const lines = [
        `Built ${relative(ctx.cwd, result.path) || result.path}  (${formatBytes(result.size_bytes)}, zstd -${level})`,
        `  ${m.package_id}@${m.version}  ${m.package_type}, ${m.language_code}: ${m.tables.length} tables, ${formatCount(rows)} rows, content ${formatBytes(m.files[0]!.size_bytes)}`,
        `  sha256 ${result.sha256}`,
        result.keyId ? `  signed by key ${result.keyId}` : '  UNSIGNED (built with --unsigned)',
      ];
      if (result.load) {
        const { rows: loaded, rowsSeconds, seconds, threads: used } = result.load;
        const on = used > 1 ? ` on ${used} threads` : '';
        lines.push(`  loaded ${formatCount(loaded)} rows at ${formatRate(loaded, rowsSeconds, 'rows')}${on}, ${seconds.toFixed(2)} s with indexes and compaction`);
      }
      return lines.join('\n');
    },
  );
}
