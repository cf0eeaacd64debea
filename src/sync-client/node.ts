/**
 * iqp/sync-client/node: the Node-only stores. Kept apart from the browser entry (index.ts) so a
 * web bundle never pulls in node:fs or better-sqlite3.
 */
export { FileStore, FileStoreCorrupt, FileStoreLocked, type FileStoreOptions } from './file-store.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
export * from './index.js';
