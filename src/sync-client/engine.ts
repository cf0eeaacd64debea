/** What push.ts and pull.ts share with the client: its store, transport, settings and callbacks. */
import type { Change, Conflict, MutationResult } from './protocol.js';
import type { QueuedMutation } from './state.js';
import type { SyncStore } from './store.js';
import type { Transport } from './transport.js';

export interface ChangeInfo {
  /** True while the pages come from a snapshot (a new device, or after a reset); false for increments. */
  snapshot: boolean;
}

export interface Rejection {
  mutation: QueuedMutation;
  result: MutationResult;
}

export interface Engine {
  readonly store: SyncStore;
  readonly transport: Transport;
  readonly deviceId: string;
  readonly deviceName?: string;
  readonly schemaVersion: number;
  readonly pushBatch: number;
  readonly pullLimit: number;
  readonly requestTimeoutMs: number;
  onChanges(changes: Change[], info: ChangeInfo): Promise<void> | void;
  onConflicts?(conflicts: Conflict[]): Promise<void> | void;
  onRejected?(rejections: Rejection[]): Promise<void> | void;
}
