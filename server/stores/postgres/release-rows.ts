/** Reading releases from PostgreSQL: one statement per listing, a release with its artifacts. */
import type { ArtifactRecord, ReleaseRecord } from '../release-types.js';
import { type ReleaseRow, toRelease } from '../rows.js';
import type { Queryable } from './sql.js';

/** A release row, with its artifacts as json (which pg parses). */
type ReleaseRowWithArtifacts = ReleaseRow & { artifacts: ArtifactRecord[] };

/**
 * A release row with its artifacts in the same statement, so the two come from one snapshot (a
 * second query could see an attach the first did not). Keys in the order of SQLite's columns.
 */
const SELECT_RELEASES = `
  SELECT r.*, (
    SELECT coalesce(json_agg(json_build_object('role', a.role, 'package_id', a.package_id, 'version', a.version, 'attached_at', a.attached_at)
                             ORDER BY a.role, a.package_id), '[]'::json)
    FROM dataset_release_artifacts a WHERE a.release_id = r.id
  ) AS artifacts
  FROM dataset_releases r`;

/** Releases, with `tail` the WHERE, ORDER BY and LIMIT clauses over alias r. */
export async function selectReleases(c: Queryable, tail: string, params: unknown[]): Promise<ReleaseRecord[]> {
  const { rows } = await c.query<ReleaseRowWithArtifacts>(`${SELECT_RELEASES} ${tail}`, params);
  return rows.map((r) => toRelease(r, r.artifacts));
}

export async function getRelease(c: Queryable, id: number): Promise<ReleaseRecord | null> {
  return (await selectReleases(c, 'WHERE r.id = $1', [id]))[0] ?? null;
}
