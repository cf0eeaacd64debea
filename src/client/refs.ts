/** `<id>[@version|@range]` as the registry commands take it, and choosing versions from a pack's list. */
import semver from 'semver';
import { IqpError } from '../errors.js';
import { isValidPackageId } from '../pack/format.js';
import { isSemver } from '../pack/manifest.js';
import type { VersionSummary } from './types.js';

export interface PackRef {
  readonly id: string;
  /** An exact version, a semver range, or null for "not said". */
  readonly spec: string | null;
  readonly exact: boolean;
}

export function parsePackRef(ref: string): PackRef {
  const at = ref.indexOf('@');
  const id = at === -1 ? ref : ref.slice(0, at);
  const spec = at === -1 ? null : ref.slice(at + 1).trim();
  if (!isValidPackageId(id)) throw new IqpError('IQP_E_INVALID_ID', `"${id}" is not a valid package id.`);
  if (spec === null) return { id, spec: null, exact: false };
  if (semver.valid(spec) === spec) return { id, spec, exact: true };
  if (spec === '' || semver.validRange(spec) === null) {
    throw new IqpError('IQP_E_INVALID_VERSION', `"${spec}" is neither a semver version nor a range (after ${id}@).`);
  }
  return { id, spec, exact: false };
}

/**
 * A version fit for a request path and a file name: semver as manifests have it (at most 64
 * characters of digits, letters, dots, dashes and one plus) whose numbers are safe integers.
 * A registry's list is not trusted to hold only such versions: `../../x` must never become a path.
 */
export function isPackVersion(value: unknown): value is string {
  return isSemver(value) && semver.valid(value) !== null;
}

/** The entries of a registry's version list that name a usable version, and how many did not. */
export function listedVersions(listing: unknown, what: string): { versions: VersionSummary[]; ignored: number } {
  const raw = (listing as { versions?: unknown } | null)?.versions;
  if (!Array.isArray(raw)) throw new IqpError('IQP_E_REGISTRY', `${what}: the answer has no versions list.`);
  const versions = raw.filter((v): v is VersionSummary => typeof v === 'object' && v !== null && isPackVersion((v as { version?: unknown }).version));
  return { versions, ignored: raw.length - versions.length };
}

export function formatRef(ref: PackRef): string {
  return ref.spec === null ? ref.id : `${ref.id}@${ref.spec}`;
}

/**
 * Every listed version the ref names (no spec: all of them). Pre-releases count in a range: to
 * deprecate "<2.0.0" is to deprecate 2.0.0-beta.1 too.
 */
export function matchVersions(versions: readonly VersionSummary[], ref: PackRef): VersionSummary[] {
  const named = versions.filter((v) => isPackVersion(v.version));
  if (ref.spec === null) return named;
  return named.filter((v) => (ref.exact ? v.version === ref.spec : semver.satisfies(v.version, ref.spec!, { includePrerelease: true })));
}

/**
 * The version to install: the newest published, non-deprecated one the ref allows; pre-releases
 * only when the range itself names one (semver's usual rule), as the registry's /download does.
 */
export function newestUsable(versions: readonly VersionSummary[], ref: PackRef): VersionSummary | null {
  const usable = versions.filter((v) => v.status === 'published' && isPackVersion(v.version) && (ref.spec === null ? semver.prerelease(v.version) === null : semver.satisfies(v.version, ref.spec)));
  return usable.sort((a, b) => semver.rcompare(a.version, b.version))[0] ?? null;
}
