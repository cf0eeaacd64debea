/** The one-line, human-readable account of a conflict that apps show and operators read. */
import type { Doc } from './merge.js';

const MAX_VALUE = 40;

function shown(value: unknown): string {
  if (value === undefined) return '(none)';
  const text = typeof value === 'string' ? `'${value}'` : JSON.stringify(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

export interface SummaryInput {
  readonly label: string;
  readonly entityId: string;
  /** Device names (or ids) of the side that lost and the side that won (the later arrival). */
  readonly loserDevice: string;
  readonly winnerDevice: string;
}

/** "Card 12 · front: phone 'abc' vs tablet 'abd' — kept tablet (later)". */
export function fieldSummary(s: SummaryInput, fields: readonly string[], loser: Doc, winner: Doc): string {
  const parts = fields.map((f) => `${f}: ${s.loserDevice} ${shown(loser[f])} vs ${s.winnerDevice} ${shown(winner[f])}`);
  return `${s.label} ${s.entityId} · ${parts.join('; ')} — kept ${s.winnerDevice} (later)`;
}

/** An edit arrived after a delete it had not seen: the entity is back. */
export function restoredSummary(s: SummaryInput): string {
  return `${s.label} ${s.entityId} · deleted on ${s.loserDevice}, then edited on ${s.winnerDevice} — kept the edit (later), so it is back`;
}

/** A delete arrived after edits it had not seen: the edited state is in the conflict's loser. */
export function deletedSummary(s: SummaryInput): string {
  return `${s.label} ${s.entityId} · edited on ${s.loserDevice}, then deleted on ${s.winnerDevice} — kept the delete (later); the edit is in this record`;
}
