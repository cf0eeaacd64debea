/** A device id that is random and stable per install, kept in the client's own store. */
import { K } from './state.js';
import type { SyncStore } from './store.js';
import { randomHex } from './timing.js';

/**
 * The stored device id, or a new random one stored now. `fresh: true` replaces it: what an app does
 * after IQP_E_DEVICE_FOREIGN (the id belongs to another account).
 */
export async function loadDeviceId(store: SyncStore, options: { fresh?: boolean } = {}): Promise<string> {
  const existing = options.fresh ? undefined : await store.get(K.deviceId);
  if (existing !== undefined) return existing;
  const id = `dev-${randomHex(16)}`;
  await store.write({ set: { [K.deviceId]: id } });
  return id;
}
