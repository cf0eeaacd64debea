/**
 * Rows as the SQL stores keep them, and the records the interfaces carry: JSON kept as text (the
 * manifest, audit details, role lists) is parsed here, the same way for every SQL adapter.
 */
import type { Manifest } from '../../src/pack/format.js';
import type { ArtifactRecord, ReleaseProfile, ReleaseRecord, ReleaseStatus } from './release-types.js';
import type { AuditEntry, PackRecord } from './types.js';

export interface PackRow {
  package_id: string;
  version: string;
  package_type: string;
  language_code: string;
  min_app_version: string;
  manifest_json: string;
  signature: string;
  signer_key_id: string;
  size_bytes: number;
  sha256: string;
  published_at: string;
  deprecated_message: string | null;
  deprecated_at: string | null;
}

export function toPack(row: PackRow): PackRecord {
  return { ...row, manifest: JSON.parse(row.manifest_json) as Manifest };
}

export interface AuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  details: string | null;
}

export function toAudit(row: AuditRow): AuditEntry {
  return { ...row, details: row.details === null ? null : (JSON.parse(row.details) as Record<string, unknown>) };
}

/** An audit filter's actor `token:<id>` also matches `token:<id>(<name>)` (AuditFilter). */
export const TOKEN_ACTOR = /^token:[0-9a-f]{12}$/;

export interface ReleaseRow {
  id: number;
  name: string;
  channel: string;
  notes: string;
  min_app_version: string;
  required_roles: string;
  profile: string | null;
  status: ReleaseStatus;
  created_at: string;
  created_by: string;
  published_at: string | null;
  published_by: string | null;
  deprecated_at: string | null;
  deprecated_message: string | null;
  sequence: number | null;
  manifest_json: string | null;
  signature: string | null;
  signer_key_id: string | null;
  expires_at: string | null;
}

export function toRelease(row: ReleaseRow, artifacts: ArtifactRecord[]): ReleaseRecord {
  return {
    id: row.id,
    name: row.name,
    channel: row.channel,
    notes: row.notes,
    min_app_version: row.min_app_version,
    required_roles: JSON.parse(row.required_roles) as string[],
    profile: row.profile,
    status: row.status,
    created_at: row.created_at,
    created_by: row.created_by,
    published_at: row.published_at,
    published_by: row.published_by,
    deprecated_at: row.deprecated_at,
    deprecated_message: row.deprecated_message,
    signed:
      row.sequence === null
        ? null
        : { sequence: row.sequence, manifest_json: row.manifest_json!, signature: row.signature!, signer_key_id: row.signer_key_id!, expires_at: row.expires_at! },
    artifacts,
  };
}

/** The state a release's audit entry records before and after a change: everything but the signed bytes. */
export function auditState(r: ReleaseRecord | null): Record<string, unknown> | null {
  if (!r) return null;
  return {
    status: r.status,
    sequence: r.signed?.sequence ?? null,
    expires_at: r.signed?.expires_at ?? null,
    signer_key_id: r.signed?.signer_key_id ?? null,
    artifacts: r.artifacts.map((a) => `${a.role}=${a.package_id}@${a.version}`),
    deprecated_message: r.deprecated_message,
  };
}

export type ProfileRow = Omit<ReleaseProfile, 'roles'> & { roles: string };

export function toProfile(row: ProfileRow): ReleaseProfile {
  return { ...row, roles: JSON.parse(row.roles) as string[] };
}
