import { describe, expect, it } from 'vitest';
import { type Page, pageJson } from './pull.js';
import type { ConflictRow, EntityRow } from './store.js';
import { conflictView } from './views.js';

function row(i: number, payloadChars: number, deleted = false): EntityRow {
  const payload = deleted ? null : JSON.stringify({ n: i, text: `é“${'x'.repeat(payloadChars)}”`, nested: { quote: '"', tab: '\t' } });
  return { entity: i % 3 === 0 ? 'card' : 'deck"s', entity_id: `id-${i}-\u2028`, version: i + 1, seq: i * 2 + 1, deleted: deleted ? 1 : 0, payload, device_id: 'd-1' };
}

const conflict: ConflictRow = {
  id: 'c_1',
  user_id: 'u',
  seq: 4,
  entity: 'card',
  entity_id: 'id-1',
  fields: '["front"]',
  base: '{"front":"a"}',
  winner: '{"front":"b"}',
  loser: '{"front":"c"}',
  winner_device: 'd-1',
  loser_device: 'd-2',
  summary: 'Card id-1 · front',
  status: 'open',
  resolution: null,
  created_at: '2026-12-06T00:00:00.000Z',
  resolved_at: null,
};

function page(changes: EntityRow[], extra: Partial<Page> = {}): Page {
  return { changes, conflicts: [], cursor: 'cur', has_more: false, head: 99, ...extra };
}

/** The answer as the protocol defines it, built from objects (what the pieces must spell). */
function expected(p: Page): unknown {
  return {
    changes: p.changes.map((r) => ({ entity: r.entity, entity_id: r.entity_id, op: r.deleted ? 'delete' : 'upsert', payload: r.payload === null ? null : JSON.parse(r.payload), version: r.version, seq: r.seq })),
    conflicts: p.conflicts.map(conflictView),
    cursor: p.cursor,
    has_more: p.has_more,
    head: p.head,
    ...(p.reset ? { reset: p.reset } : {}),
  };
}

describe('pageJson', () => {
  it('spells the page exactly, whatever its size, in pieces that each stay small', () => {
    const sizes = [0, 1, 2, 29, 30, 31, 32, 33, 64, 65, 500];
    for (const n of sizes) {
      // ~1 KiB rows: about 30 to a piece, so the sizes cross piece boundaries on both sides.
      const p = page(Array.from({ length: n }, (_, i) => row(i, 1000, i % 7 === 5)), { has_more: n > 0, conflicts: n > 1 ? [conflict] : [] });
      const pieces = pageJson(p);
      expect(JSON.parse(pieces.join('')), `${n} rows`).toEqual(expected(p));
      for (const piece of pieces) expect(piece.length, `${n} rows`).toBeLessThan(40 * 1024);
      if (n >= 64) expect(pieces.length, `${n} rows`).toBeGreaterThan(1);
    }
  });

  it('keeps a row larger than a piece whole, and a reset answer', () => {
    const big = page([row(1, 100_000), row(2, 10)]);
    expect(JSON.parse(pageJson(big).join(''))).toEqual(expected(big));
    const reset = page([], { has_more: true, reset: { reason: 'cursor_expired' } });
    expect(pageJson(reset)).toEqual([JSON.stringify(expected(reset))]);
  });
});
