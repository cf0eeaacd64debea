/** Pack format v1: the entry names, their order and the limits a reader enforces (docs/pack-format.md). */

export const FORMAT_VERSION = 1;

export const ENTRY = {
  manifest: 'manifest.json',
  content: 'content.sqlite',
  checksums: 'checksums.sha256',
  signature: 'manifest.json.minisig',
} as const;

/** Archive order: the manifest first, so a reader knows every size before the payload arrives; the signature last. */
export const ENTRY_ORDER: readonly string[] = [ENTRY.manifest, ENTRY.content, ENTRY.checksums, ENTRY.signature];

/** Files listed in manifest.files (everything but the manifest itself and what is derived from it). */
export const PAYLOAD_FILES: readonly string[] = [ENTRY.content];

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;
export const KiB = 1024;

export interface Limits {
  /** Largest content.sqlite accepted, and the bound on everything a pack expands to. */
  readonly maxContentBytes: number;
  readonly maxManifestBytes: number;
  readonly maxChecksumsBytes: number;
  readonly maxSignatureBytes: number;
  /** Zero padding allowed after the end-of-archive marker (GNU tar pads to 10 KiB records). */
  readonly maxTrailingZeroBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxContentBytes: 16 * GiB,
  maxManifestBytes: 1 * MiB,
  maxChecksumsBytes: 4 * KiB,
  maxSignatureBytes: 8 * KiB,
  maxTrailingZeroBytes: 1 * MiB,
};

/** The default limits with max_content_bytes (`--max-size`) as configured: what inspect, verify and pull read packs with. */
export function limitsWithMaxContent(maxContentBytes: number): Limits {
  return { ...DEFAULT_LIMITS, maxContentBytes };
}

/**
 * The most bytes of manifest.json.minisig a registry takes beside an upload (iqp's own are about
 * 400); a pack with a larger one is uploaded without it and verified in two passes.
 */
export const MAX_SENT_SIGNATURE_BYTES = 4 * KiB;

/**
 * zstd window limit for readers: 8 MiB (window log 23) covers levels 1-19, and keeps the memory a
 * phone needs to decompress a pack small. Packs made with --long or --ultra levels are rejected.
 */
export const ZSTD_WINDOW_LOG_MAX = 23;
/**
 * zstd window limit for packs iqp builds: 4 MiB (window log 22), what levels 1-16 use anyway.
 * Levels 17-19 would use 8 MiB; capped, they give packs about 2 % larger (a 60 MB sample of the
 * synthetic benchmark at level 19) that need half the memory to decompress, on a phone and in
 * `iqp verify`, which then stays under 64 MiB at every level.
 */
export const ZSTD_WINDOW_LOG_BUILD = 22;
export const ZSTD_MIN_LEVEL = 1;
export const ZSTD_MAX_LEVEL = 19;
/** Chosen from the size/speed table in docs/performance.md. */
export const ZSTD_DEFAULT_LEVEL = 6;

/** SQLite page size fixed for reproducible content databases. */
export const SQLITE_PAGE_SIZE = 4096;

export const PACKAGE_ID_PATTERN = /^[a-z][a-z0-9]*(?:[.\-_][a-z0-9]+)*$/;
export const PACKAGE_ID_MAX = 64;
export const PACKAGE_TYPE_PATTERN = /^[a-z][a-z0-9-]{1,31}$/;

export function isValidPackageId(id: string): boolean {
  return id.length >= 3 && id.length <= PACKAGE_ID_MAX && PACKAGE_ID_PATTERN.test(id);
}

export function packFileName(packageId: string, version: string): string {
  return `${packageId}-${version}.iqp`;
}

export interface ManifestFile {
  path: string;
  size_bytes: number;
  sha256: string;
}

export interface ManifestTable {
  name: string;
  row_count: number;
  columns: string[];
}

export interface Manifest {
  format: 1;
  package_id: string;
  package_type: string;
  version: string;
  language_code: string;
  name: string;
  description: string;
  min_app_version: string;
  created_at: string;
  license?: string;
  attribution?: string;
  files: ManifestFile[];
  tables: ManifestTable[];
}

/** The authored part of a manifest (iqp.json in a pack source). */
export type AuthoredManifest = Pick<
  Manifest,
  'package_id' | 'package_type' | 'version' | 'language_code' | 'name' | 'description' | 'min_app_version' | 'license' | 'attribution'
>;

/** Canonical serialisation: fixed key order, two-space indent, trailing newline, so builds are byte-identical. */
export function serializeManifest(m: Manifest): Buffer {
  const ordered: Manifest = {
    format: m.format,
    package_id: m.package_id,
    package_type: m.package_type,
    version: m.version,
    language_code: m.language_code,
    name: m.name,
    description: m.description,
    min_app_version: m.min_app_version,
    created_at: m.created_at,
    ...(m.license !== undefined ? { license: m.license } : {}),
    ...(m.attribution !== undefined ? { attribution: m.attribution } : {}),
    files: m.files.map((f) => ({ path: f.path, size_bytes: f.size_bytes, sha256: f.sha256 })),
    tables: m.tables.map((t) => ({ name: t.name, row_count: t.row_count, columns: [...t.columns] })),
  };
  return Buffer.from(`${JSON.stringify(ordered, null, 2)}\n`, 'utf8');
}

/** Exactly what `sha256sum manifest.json content.sqlite` prints. */
export function serializeChecksums(entries: ReadonlyArray<{ path: string; sha256: string }>): Buffer {
  return Buffer.from(entries.map((e) => `${e.sha256}  ${e.path}\n`).join(''), 'utf8');
}

/** The trusted comment a pack signature carries; verifiers compare it with the manifest they read. */
export function packTrustedComment(packageId: string, version: string, manifestSha256: string): string {
  return `iqp-pack package_id=${packageId} version=${version} manifest_sha256=${manifestSha256}`;
}

export function parsePackTrustedComment(comment: string): { package_id: string; version: string; manifest_sha256: string } | null {
  const m = /^iqp-pack package_id=(\S+) version=(\S+) manifest_sha256=([0-9a-f]{64})$/.exec(comment);
  if (!m) return null;
  return { package_id: m[1]!, version: m[2]!, manifest_sha256: m[3]! };
}
