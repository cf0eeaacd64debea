/** The sync plugin's config, as the host hands it over (validated against iqp-plugin.json's schema, defaults applied). */
export interface Upgrade {
  readonly from: number;
  readonly rename?: Readonly<Record<string, string>>;
  readonly set?: Readonly<Record<string, unknown>>;
  readonly remove?: readonly string[];
}

export interface EntityConfig {
  readonly label?: string;
  readonly schema?: Readonly<Record<string, unknown>>;
  readonly max_payload_bytes?: number;
  readonly upgrades?: readonly Upgrade[];
}

interface Limit {
  readonly points: number;
  readonly duration_s: number;
}

export interface SyncConfig {
  readonly entities: Readonly<Record<string, EntityConfig>>;
  readonly schema_versions: { readonly min: number; readonly max: number };
  readonly max_payload_bytes: number;
  readonly max_push_mutations: number;
  readonly max_push_bytes: number;
  readonly max_pull_bytes: number;
  readonly max_wait_s: number;
  /** How often a waiting pull looks at the database for pushes its peers did not tell it of (another machine's). */
  readonly wait_check_ms: number;
  readonly max_waiting_pulls: number;
  readonly max_concurrent_pushes: number;
  readonly max_import_bytes: number;
  readonly retention: { readonly max_days: number; readonly compact_interval_s: number };
  readonly rate_limits: { readonly push_per_user: Limit; readonly pull_per_user: Limit };
}
