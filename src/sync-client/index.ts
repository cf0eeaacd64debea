/**
 * iqp/sync-client, the browser-safe entry: no Node module and no package anywhere in its import
 * graph (test/sync-client/import-graph.test.ts holds that), only fetch, AbortController, timers
 * and crypto.getRandomValues. Node adapters (FileStore, SqliteStore) are in iqp/sync-client/node.
 */
export { SyncClient, type SyncClientOptions, type SyncStatus, type StatusDetail, type MutationInput } from './client.js';
export type { ChangeInfo, Rejection } from './engine.js';
export { SyncError, CLIENT_CODES, type SyncErrorKind } from './errors.js';
export { IndexedDbStore } from './indexeddb-store.js';
export * from './protocol.js';
export type { QueuedMutation } from './state.js';
export { loadDeviceId } from './device.js';
export { MemoryStore, type SyncStore, type WriteBatch } from './store.js';
export type { Sleep } from './timing.js';
export { authTokens, staticTokens, type AuthTokens, type AuthTokensOptions, type TokenSource } from './tokens.js';
export type { FetchLike } from './transport.js';
