/** `iqp build` as a library call: source folder (or prebuilt database) → signed pack. */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackTemp } from '../atomic.js';
import { IqpError } from '../errors.js';
import { authoringWarnings, type BuildWarning, templateTexts } from './authoring.js';
import { describeContent, startIntegrityCheck } from './content.js';
import { type AuthoredManifest, DEFAULT_LIMITS, ENTRY, FORMAT_VERSION, type Manifest, serializeManifest, ZSTD_MAX_LEVEL, ZSTD_MIN_LEVEL } from './format.js';
import { validateManifest } from './manifest.js';
import { checkRequirements } from './requirements.js';
import { type LoadProgress, type LoadResult, loadSource } from './load.js';
import type { SecretKey } from './minisign.js';
import type { PackSource } from './source.js';
import { type ByteProgress, type WrittenPack, writePack } from './writer.js';

export interface BuildInput {
  readonly source: PackSource | { readonly authored: AuthoredManifest; readonly contentFile: string };
  readonly secretKey: SecretKey | null;
  readonly level: number;
  /** Threads for loading and compressing (default: one per core, see threads.ts); the pack is the same for any number. */
  readonly threads?: number;
  /** The longest line (and CSV record) a data file may have (default DEFAULT_MAX_LINE_BYTES, rows.ts). */
  readonly maxLineBytes?: number;
  readonly outPath: string;
  /** Build time; the CLI passes SOURCE_DATE_EPOCH when set, so builds are reproducible. */
  readonly createdAt: Date;
  /** Refuse to build where there would be warnings (authoring.ts): the first one is thrown. */
  readonly strict?: boolean;
}

export interface BuildProgress {
  onLoad?: (p: LoadProgress) => void;
  onPhase?: (phase: 'load' | 'check' | 'hash' | 'write') => void;
  onWrite?: ByteProgress;
}

export interface BuildResult extends WrittenPack {
  readonly manifest: Manifest;
  /** What loading the source took (null for --content). */
  readonly load: LoadResult | null;
  /** What the author should fix but did not stop the build (see authoring.ts). */
  readonly warnings: readonly BuildWarning[];
}

export function checkLevel(level: number): void {
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new IqpError('IQP_E_USAGE', `--level must be an integer from ${ZSTD_MIN_LEVEL} to ${ZSTD_MAX_LEVEL}.`);
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** RFC 3339 in UTC with second precision: reproducible and what the schema's date-time accepts. */
export function formatCreatedAt(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export async function buildPack(input: BuildInput, progress: BuildProgress = {}): Promise<BuildResult> {
  checkLevel(input.level);
  const threads = input.threads !== undefined ? { threads: input.threads } : {};
  const work = await mkdtemp(join(tmpdir(), 'iqp-build-'));
  const untrack = trackTemp(work);
  try {
    let contentPath: string;
    let load: LoadResult | null = null;
    if ('contentFile' in input.source) {
      contentPath = input.source.contentFile;
      if (!existsSync(contentPath)) throw new IqpError('IQP_E_FILE_NOT_FOUND', `Content database not found: ${contentPath}`);
      const wal = `${contentPath}-wal`;
      if (existsSync(wal) && statSync(wal).size > 0) {
        throw new IqpError('IQP_E_CONTENT_INVALID', `${contentPath} has uncommitted WAL data; checkpoint it first (sqlite3 ${contentPath} 'PRAGMA wal_checkpoint(TRUNCATE)').`);
      }
    } else {
      progress.onPhase?.('load');
      contentPath = join(work, ENTRY.content);
      load = await loadSource(input.source, contentPath, progress.onLoad, { ...threads, ...(input.maxLineBytes !== undefined ? { maxLineBytes: input.maxLineBytes } : {}) });
    }
    progress.onPhase?.('check');
    const prebuilt = 'contentFile' in input.source;
    const what = prebuilt ? contentPath : 'content.sqlite';
    const tables = describeContent(contentPath, { integrity: false, what });
    checkRequirements(input.source.authored.package_type, tables);
    const warnings = authoringWarnings(input.source.authored, tables, await templateTexts());
    const [first] = warnings;
    if (input.strict && first) throw new IqpError(first.code, `${first.message} (--strict)`, first.details);
    // integrity_check runs alongside hashing and compression (on a worker thread for big
    // databases), and the pack is committed only once it has passed.
    const integrity = startIntegrityCheck(contentPath, what);
    try {
      progress.onPhase?.('hash');
      const size = statSync(contentPath).size;
      const sha256 = await sha256File(contentPath);
      const { authored } = input.source;
      const manifest: Manifest = {
        format: FORMAT_VERSION,
        package_id: authored.package_id,
        package_type: authored.package_type,
        version: authored.version,
        language_code: authored.language_code,
        name: authored.name,
        description: authored.description,
        min_app_version: authored.min_app_version,
        created_at: formatCreatedAt(input.createdAt),
        ...(authored.license !== undefined ? { license: authored.license } : {}),
        ...(authored.attribution !== undefined ? { attribution: authored.attribution } : {}),
        files: [{ path: ENTRY.content, size_bytes: size, sha256 }],
        tables,
      };
      // Self-check: what we sign must be what every reader accepts.
      const manifestBytes = serializeManifest(manifest);
      if (manifestBytes.length > DEFAULT_LIMITS.maxManifestBytes) {
        throw new IqpError('IQP_E_MANIFEST_SCHEMA', `The manifest would be ${manifestBytes.length} bytes; readers accept at most ${DEFAULT_LIMITS.maxManifestBytes} (too many tables or columns).`);
      }
      validateManifest(JSON.parse(manifestBytes.toString('utf8')));
      progress.onPhase?.('write');
      const written = await writePack(
        { manifest, contentPath, secretKey: input.secretKey, level: input.level, ...threads, outPath: input.outPath, beforeCommit: () => integrity.result },
        progress.onWrite,
      );
      return { ...written, manifest, load, warnings };
    } catch (err) {
      // A database that fails its integrity check explains any other failure that came first.
      await integrity.cancel();
      await integrity.result.catch((failed: unknown) => {
        if (failed instanceof IqpError && failed.code !== 'IQP_E_INTERNAL') err = failed;
      });
      throw err;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    untrack();
  }
}
