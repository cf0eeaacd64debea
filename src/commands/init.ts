import { Command } from 'commander';
import { cp, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { trackTemp } from '../atomic.js';
import type { Context } from '../cli/context.js';
import { IqpError } from '../errors.js';
import { type AuthoredText, PLACEHOLDERS } from '../pack/authoring.js';
import { isValidPackageId, packFileName } from '../pack/format.js';
import { isLanguageTag } from '../pack/manifest.js';
import { TEMPLATE_DESCRIPTIONS, TEMPLATE_NAMES, type TemplateName } from '../pack/requirements.js';
import { SOURCE_FILE } from '../pack/source.js';
import { TEMPLATES_DIR } from '../paths.js';

interface Options {
  template?: string;
  id?: string;
  lang?: string;
  name?: string;
  description?: string;
  license?: string;
  attribution?: string;
  yes?: boolean;
  force?: boolean;
}

/** Template files whose names cannot be shipped as is (npm drops .gitignore from packages). */
const RENAME: Readonly<Record<string, string>> = { _gitignore: '.gitignore' };

export function define(): Command {
  return new Command('init')
    .description('create a pack source folder from a template')
    .argument('[dir]', 'folder to create (must be empty or absent)', '.')
    .option('-t, --template <name>', `template: ${TEMPLATE_NAMES.join(', ')}`)
    .option('--id <package_id>', 'package id, e.g. quran.translation.en-pickthall')
    .option('--lang <bcp47>', 'language of the content, e.g. en, ar, ur-PK')
    .option('--name <text>', 'display name of the pack')
    .option('--description <text>', 'what the pack holds, for its users (default: asked, or a placeholder once --id, --lang or --name make it another pack)')
    .option('--license <text>', 'license of the content, e.g. CC-BY-4.0 (default: as --description)')
    .option('--attribution <text>', 'credits for the content’s authors and sources (default: as --description)')
    .option('-y, --yes', 'use the template’s defaults for anything not given, without asking')
    .option('-f, --force', 'write into a non-empty folder (existing files with the same names are replaced)');
}

function defaultId(dir: string, template: TemplateName): string {
  const fromDir = basename(dir).toLowerCase().replace(/[^a-z0-9.\-_]+/g, '-').replace(/^[^a-z]+/, '').replace(/[.\-_]+$/, '');
  return isValidPackageId(fromDir) ? fromDir : `example.${template}`;
}

async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  const info = await stat(dir).catch(() => null);
  if (!info) return true;
  if (!info.isDirectory()) throw new IqpError('IQP_E_TARGET_NOT_EMPTY', `${dir} exists and is not a folder.`);
  return (await readdir(dir)).length === 0;
}

async function resolveValues(ctx: Context, opts: Options, dir: string) {
  const ask = !opts.yes;
  let template = opts.template;
  if (template === undefined) {
    template = ask
      ? await ctx.prompt.select(
          '--template',
          'Which kind of pack?',
          TEMPLATE_NAMES.map((t) => ({ value: t, name: t, description: TEMPLATE_DESCRIPTIONS[t] })),
        )
      : 'translation';
  }
  if (!(TEMPLATE_NAMES as readonly string[]).includes(template)) {
    throw new IqpError('IQP_E_TEMPLATE_UNKNOWN', `Unknown template "${template}"; choose one of ${TEMPLATE_NAMES.join(', ')}.`);
  }
  const name = template as TemplateName;
  const authored = JSON.parse(await readFile(join(TEMPLATES_DIR, name, SOURCE_FILE), 'utf8')) as Record<string, string>;
  const validId = (v: string) => (isValidPackageId(v) ? true : 'lowercase letters, digits, dots and dashes; 3-64 characters; starts with a letter');
  const validLang = (v: string) => (isLanguageTag(v) ? true : 'a BCP 47 tag such as en, ar or ur-PK');
  const id = opts.id ?? (ask ? await ctx.prompt.input('--id', 'Package id', { default: defaultId(dir, name), validate: validId }) : defaultId(dir, name));
  const lang = opts.lang ?? (ask ? await ctx.prompt.input('--lang', 'Language (BCP 47)', { default: authored['language_code'], validate: validLang }) : authored['language_code']!);
  const title = opts.name ?? (ask ? await ctx.prompt.input('--name', 'Display name', { default: authored['name'] }) : authored['name']!);
  if (!isValidPackageId(id)) throw new IqpError('IQP_E_INVALID_ID', `"${id}" is not a valid package id.`);
  if (!isLanguageTag(lang)) throw new IqpError('IQP_E_MANIFEST_LANGUAGE', `"${lang}" is not a BCP 47 language tag.`);
  if (title.trim() === '') throw new IqpError('IQP_E_USAGE', '--name must not be empty.');
  // The template's description, license and attribution describe its example content: once the
  // pack is another (its own id, language or name), they are asked for, or left as placeholders
  // that iqp build warns about, rather than shipped as if they were the pack's.
  const own = [opts.id, opts.lang, opts.name].some((v, i) => v !== undefined && v !== authored[['package_id', 'language_code', 'name'][i]!]);
  const texts: Record<string, string> = {};
  for (const field of Object.keys(PLACEHOLDERS) as AuthoredText[]) {
    const given = opts[field];
    const fallback = own ? PLACEHOLDERS[field] : authored[field]!;
    texts[field] = given ?? (ask && ctx.interactive ? await ctx.prompt.input(`--${field}`, FIELD_PROMPTS[field], { default: fallback }) : fallback);
  }
  return { template: name, authored, id, lang, title, texts };
}

const FIELD_PROMPTS: Record<AuthoredText, string> = {
  description: 'Description (what the pack holds, for its users)',
  license: 'License of the content',
  attribution: 'Attribution (authors, translators, sources)',
};

/** Copies a template into `dir` (empty or absent unless forced), with iqp.json fields overridden. */
export async function scaffold(template: TemplateName, dir: string, overrides: Record<string, string>): Promise<void> {
  // Stage the whole tree next to the target and move it in at the end, so a failure leaves nothing.
  const staging = join(dirname(dir), `.${basename(dir)}.iqp-tmp-${randomBytes(4).toString('hex')}`);
  await mkdir(dirname(dir), { recursive: true });
  const untrack = trackTemp(staging);
  try {
    await cp(join(TEMPLATES_DIR, template), staging, { recursive: true, errorOnExist: true });
    for (const [from, to] of Object.entries(RENAME)) await rename(join(staging, from), join(staging, to)).catch(() => {});
    const authored = { ...(JSON.parse(await readFile(join(staging, SOURCE_FILE), 'utf8')) as object), ...overrides };
    await writeFile(join(staging, SOURCE_FILE), `${JSON.stringify(authored, null, 2)}\n`);
    if (await isEmptyOrAbsent(dir)) {
      await rmdir(dir).catch(() => {});
      await rename(staging, dir);
    } else {
      await cp(staging, dir, { recursive: true, force: true });
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
    untrack();
  }
}

export async function run(ctx: Context, opts: Options, dirArg: string): Promise<void> {
  const dir = resolve(ctx.cwd, dirArg);
  if (!opts.force && !(await isEmptyOrAbsent(dir))) {
    throw new IqpError('IQP_E_TARGET_NOT_EMPTY', `${dir} is not empty.`);
  }
  const v = await resolveValues(ctx, opts, dir);
  await scaffold(v.template, dir, { package_id: v.id, language_code: v.lang, name: v.title, ...v.texts });
  const shown = relative(ctx.cwd, dir) || '.';
  ctx.out.result({ dir, template: v.template, package_id: v.id, language_code: v.lang, name: v.title }, () =>
    [
      `Created a ${v.template} pack source in ${shown}`,
      `  ${v.id} (${v.lang}): ${v.title}`,
      'Next:',
      '  iqp keygen --out signing      # once; keep signing.key private, outside the source folder',
      `  iqp build ${shown} --key signing.key     # writes ${packFileName(v.id, String(v.authored['version']))}`,
    ].join('\n'),
  );
}
