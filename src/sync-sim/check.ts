/**
 * The invariants a simulation ends with, checked against the registry's own answers:
 * - zero silent loss: every value a device wrote (and was not told was rejected) is in the final
 *   state, in a conflict record, or was replaced by a device that had it in front of it;
 * - convergence: every device holds exactly the registry's state (the export's lines and checksum);
 * - isolation and monotonic reads (checked as changes arrive, device.ts);
 * - exact paging: a pull from the start returns every live entity once, for several page sizes.
 */
import type { Rng } from '../prng.js';
import type { Conflict, JsonObject } from '../sync-client/protocol.js';
import type { Row, SimDevice } from './device.js';
import { exportChecksum as checksum } from './export-checksum.js';
import type { SimServer } from './server.js';

interface ServerView {
  readonly rows: Map<string, Row>;
  readonly sha256: string;
  readonly conflicts: Conflict[];
}

async function call(server: SimServer, device: SimDevice, path: string, init: { method?: string; body?: unknown } = {}): Promise<Response> {
  const token = await device.tokens.accessToken();
  const res = await fetch(`${server.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}) },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
  });
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
  return res;
}

async function serverView(server: SimServer, device: SimDevice): Promise<ServerView> {
  const text = await (await call(server, device, '/v1/sync/export')).text();
  const lines = text.trimEnd().split('\n');
  const trailer = JSON.parse(lines.pop()!).trailer as { sha256: string };
  const rows = new Map<string, Row>();
  for (const l of lines) {
    const v = JSON.parse(l) as { entity: string; entity_id: string; version: number; payload: JsonObject };
    rows.set(`${v.entity}/${v.entity_id}`, { version: v.version, payload: v.payload });
  }
  const conflicts: Conflict[] = [];
  let after = '';
  for (;;) {
    const page = (await (await call(server, device, `/v1/sync/conflicts?status=all&limit=500${after ? `&after=${after}` : ''}`)).json()) as { conflicts: Conflict[]; next: string | null };
    conflicts.push(...page.conflicts);
    if (!page.next) break;
    after = page.next;
  }
  return { rows, sha256: trailer.sha256, conflicts };
}

function values(doc: JsonObject | null | undefined): string[] {
  return doc ? Object.values(doc).filter((v): v is string => typeof v === 'string') : [];
}

export async function check(server: SimServer, devices: readonly SimDevice[], rng: Rng): Promise<string[]> {
  const violations = devices.flatMap((d) => d.violations);
  const users = new Map<string, SimDevice[]>();
  for (const d of devices) users.set(d.userTag, [...(users.get(d.userTag) ?? []), d]);
  for (const [tag, mine] of users) {
    const view = await serverView(server, mine[0]!);
    if (checksum(view.rows) !== view.sha256) violations.push(`export: ${tag}'s trailer checksum does not match its lines`);

    // Convergence.
    for (const d of mine) {
      if ((await d.client.pendingCount()) !== 0) violations.push(`convergence: ${d.id} still has queued mutations after the quiet period`);
      const sum = checksum(d.rows);
      if (sum !== view.sha256) {
        const differ = [...new Set([...d.rows.keys(), ...view.rows.keys()])].find((k) => JSON.stringify(d.rows.get(k)) !== JSON.stringify(view.rows.get(k)));
        violations.push(`convergence: ${d.id} holds ${d.rows.size} entities (checksum ${sum.slice(0, 12)}), the registry ${view.rows.size} (${view.sha256.slice(0, 12)}); first difference ${differ}: device ${JSON.stringify(d.rows.get(differ ?? ''))} vs registry ${JSON.stringify(view.rows.get(differ ?? ''))}`);
      }
    }

    // Zero silent loss.
    const rejected = new Set(mine.flatMap((d) => d.rejected.map((r) => `${d.id}:${r.mutation.mutation_id}`)));
    const accounted = new Map<string, Set<string>>();
    const add = (key: string, vs: readonly string[]) => {
      const s = accounted.get(key) ?? new Set<string>();
      for (const v of vs) s.add(v);
      accounted.set(key, s);
    };
    for (const [key, row] of view.rows) add(key, values(row.payload));
    for (const c of view.conflicts) add(`${c.entity}/${c.entity_id}`, [...values(c.winner), ...values(c.loser), ...values(c.base)]);
    for (const d of mine) for (const w of d.written) add(w.key, w.replaced);
    for (const d of mine) {
      for (const w of d.written) {
        if (rejected.has(`${d.id}:${w.mutationId}`)) continue;
        for (const [field, value] of Object.entries(w.set)) {
          if (!accounted.get(w.key)?.has(value)) violations.push(`silent loss: ${w.key}.${field} = ${value} (mutation ${w.mutationId} of ${d.id}) is in neither the final state, a conflict record, nor replaced by a device that saw it`);
        }
      }
    }

    // Exact paging from the start, for a few page sizes.
    const live = [...view.rows.keys()].sort();
    for (const limit of [1, rng.int(2, 7), rng.int(8, 1000)]) {
      const got: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 10_000; pages++) {
        const page = (await (await call(server, mine[0]!, '/v1/sync/pull', { method: 'POST', body: { device_id: mine[0]!.id, cursor, limit } })).json()) as {
          changes: { entity: string; entity_id: string; op: string }[];
          cursor: string;
          has_more: boolean;
        };
        got.push(...page.changes.filter((c) => c.op !== 'delete').map((c) => `${c.entity}/${c.entity_id}`));
        cursor = page.cursor;
        if (!page.has_more) break;
      }
      if (JSON.stringify(got.slice().sort()) !== JSON.stringify(live) || new Set(got).size !== got.length) {
        violations.push(`paging: a pull from the start with limit ${limit} returned ${got.length} live entities (${new Set(got).size} distinct), the registry holds ${live.length}`);
      }
    }
  }
  return violations;
}
