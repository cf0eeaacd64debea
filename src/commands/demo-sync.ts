/**
 * The sync part of `iqp demo`: the app user from the accounts part on two devices (a phone and a
 * tablet), each the real `iqp/sync-client` over an in-memory store, against the demo's registry
 * with the sync plugin enabled. Reading progress, bookmarks and settings sync from the phone to the
 * tablet; the phone edits offline while the tablet edits the same setting and another field of the
 * same progress entity; back online the fields merge, the setting becomes a conflict whose record
 * keeps both values; the tablet resolves it; both devices end with the registry's export checksum.
 */
import { createHash } from 'node:crypto';
import { SyncClient } from '../sync-client/client.js';
import type { Change, Conflict, JsonObject } from '../sync-client/protocol.js';
import { MemoryStore } from '../sync-client/store.js';
import { authTokens } from '../sync-client/tokens.js';
import { IqpError } from '../errors.js';
import { exportChecksum as checksum } from '../sync-sim/export-checksum.js';

/** The entities the demo's app syncs, as an operator would configure them. */
export const DEMO_SYNC_CONFIG = {
  entities: {
    progress: { label: 'Reading progress', schema: { type: 'object', properties: { surah: { type: 'integer', minimum: 1, maximum: 114 }, ayah: { type: 'integer', minimum: 1 } } } },
    bookmark: { label: 'Bookmark', schema: { type: 'object', required: ['surah', 'ayah'] } },
    settings: { label: 'Settings' },
  },
};

export interface SyncDemo {
  readonly devices: readonly string[];
  readonly tablet_received: number;
  /** progress/quran after the merge: the phone's ayah and the tablet's note. */
  readonly merged: JsonObject;
  readonly conflict: { readonly fields: readonly string[]; readonly summary: string; readonly resolution: string | null };
  readonly converged: boolean;
  readonly entities: number;
  readonly sha256: string;
}

interface Device {
  readonly id: string;
  readonly name: string;
  readonly client: SyncClient;
  readonly rows: Map<string, { version: number; payload: JsonObject }>;
  readonly conflicts: Conflict[];
  token(): Promise<string | null>;
}

async function device(url: string, email: string, password: string, name: string): Promise<Device> {
  const store = new MemoryStore();
  const deviceId = `demo-${name}-${createHash('sha256').update(`${email}${name}`).digest('hex').slice(0, 12)}`;
  const tokens = authTokens({ baseUrl: url, store, deviceId, deviceName: name });
  await tokens.signIn(email, password);
  const rows = new Map<string, { version: number; payload: JsonObject }>();
  const conflicts: Conflict[] = [];
  const client = new SyncClient({
    baseUrl: url,
    deviceId,
    deviceName: name,
    schemaVersion: 1,
    store,
    tokens,
    onChanges(changes: Change[]) {
      for (const c of changes) {
        if (c.op === 'delete') rows.delete(`${c.entity}/${c.entity_id}`);
        else rows.set(`${c.entity}/${c.entity_id}`, { version: c.version, payload: c.payload as JsonObject });
      }
    },
    onConflicts: (cs) => void conflicts.push(...cs),
  });
  return { id: deviceId, name, client, rows, conflicts, token: () => tokens.accessToken() };
}

async function edit(d: Device, entity: string, id: string, op: 'upsert' | 'patch', payload: JsonObject): Promise<string> {
  return d.client.mutate({ entity, entity_id: id, op, payload });
}

export async function syncDemo(url: string, email: string, password: string, say: (line: string) => void, step: number): Promise<SyncDemo> {
  const n = () => `${step++}.`.padEnd(4);
  const phone = await device(url, email, password, 'phone');
  const tablet = await device(url, email, password, 'tablet');
  say(`${n()}devices phone and tablet signed in as ${email}, each with its own sync client (iqp/sync-client) and local queue`);

  await edit(phone, 'progress', 'quran', 'upsert', { surah: 2, ayah: 255, note: 'Ayat al-Kursi' });
  await edit(phone, 'bookmark', '2-255', 'upsert', { surah: 2, ayah: 255 });
  await edit(phone, 'bookmark', '36-1', 'upsert', { surah: 36, ayah: 1 });
  await edit(phone, 'settings', 'reader', 'upsert', { theme: 'light', translation: 'en-pickthall' });
  await phone.client.syncOnce();
  say(`${n()}sync    phone: 4 changes committed locally, then pushed (POST /v1/sync/push) and pulled (POST /v1/sync/pull)`);
  await tablet.client.syncOnce();
  const received = tablet.rows.size;
  say(`${n()}sync    tablet: a new device pulls the latest state of ${received} entities`);

  // The phone goes offline; its edits wait in its queue while the tablet edits online.
  await edit(phone, 'progress', 'quran', 'patch', { ayah: 256 });
  await edit(phone, 'settings', 'reader', 'patch', { theme: 'dark' });
  await edit(tablet, 'progress', 'quran', 'patch', { note: 'Memorize by Friday' });
  await edit(tablet, 'settings', 'reader', 'patch', { theme: 'sepia' });
  await tablet.client.syncOnce();
  say(`${n()}offline phone edits progress.ayah and settings.theme offline; tablet edits progress.note and settings.theme, and syncs`);
  await phone.client.syncOnce();
  await tablet.client.syncOnce();
  const progress = phone.rows.get('progress/quran')?.payload;
  const conflict = phone.conflicts.find((c) => c.entity === 'settings');
  if (!conflict || progress?.['ayah'] !== 256 || progress?.['note'] !== 'Memorize by Friday') throw new IqpError('IQP_E_INTERNAL', 'The demo’s devices did not merge as the sync protocol says.');
  say(`${n()}merge   phone back online: progress merged field by field (ayah 256 from the phone, note from the tablet)`);
  say(`${n()}conflict ${conflict.summary}`);

  const token = await tablet.token();
  const resolved = await fetch(`${url}/v1/sync/conflicts/${encodeURIComponent(conflict.id)}/resolve`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ device_id: tablet.id, keep: 'loser' }),
  });
  if (resolved.status !== 200) throw new IqpError('IQP_E_INTERNAL', `Resolving the demo's conflict answered ${resolved.status}.`);
  await phone.client.syncOnce();
  await tablet.client.syncOnce();
  say(`${n()}resolve tablet keeps its own value (POST /v1/sync/conflicts/{id}/resolve, keep: loser): theme ${String(phone.rows.get('settings/reader')?.payload['theme'])} on both devices`);

  const exported = await (await fetch(`${url}/v1/sync/export`, { headers: { authorization: `Bearer ${token}` } })).text();
  const trailer = JSON.parse(exported.trimEnd().split('\n').at(-1)!).trailer as { count: number; sha256: string };
  const converged = checksum(phone.rows) === trailer.sha256 && checksum(tablet.rows) === trailer.sha256;
  say(`${n()}export  GET /v1/sync/export: ${trailer.count} entities, sha256 ${trailer.sha256.slice(0, 16)}…; both devices hold exactly that: ${converged ? 'converged' : 'NOT converged'}`);
  for (const d of [phone, tablet]) await d.client.stop();
  const final = phone.conflicts.find((c) => c.id === conflict.id && c.status === 'resolved') ?? conflict;
  return {
    devices: [phone.name, tablet.name],
    tablet_received: received,
    merged: progress,
    conflict: { fields: conflict.fields, summary: conflict.summary, resolution: final.resolution },
    converged,
    entities: trailer.count,
    sha256: trailer.sha256,
  };
}
