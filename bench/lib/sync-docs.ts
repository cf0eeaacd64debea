/**
 * The documents both sync peers store: seeded, 1 KiB of JSON each (prose, a title, a few tags and
 * the document's number), the same bytes for iqp's sync plugin and for pouchdb-server.
 *
 * A pool of distinct payloads is generated once (generating prose costs a few microseconds a
 * document, which would otherwise be taken from the server's two cores while it is measured);
 * document i carries pool[i % size] plus its own number, so no two documents are equal.
 */
import { Rng, TextGen } from './prng.js';

/** Serialized payload bytes per document (ASCII, so bytes = characters), the "1 KB". */
export const PAYLOAD_BYTES = 1024;
/** Room kept for `,"n":<number>}`: numbers up to 9,999,999. */
const TAIL_ROOM = ',"n":9999999}'.length;

export interface DocSet {
  readonly seed: number;
  /** Payload i as JSON text. */
  payload(i: number): string;
  /** The entity id (iqp) and _id (pouchdb) of document i. */
  id(i: number): string;
}

export function docSet(seed: number, poolSize = 8192): DocSet {
  const rng = new Rng(seed);
  const text = new TextGen(rng, 5000);
  // Each pool entry is an object's JSON without its closing brace, padded so that the whole
  // payload with a 7-digit number is PAYLOAD_BYTES long.
  const pool: string[] = [];
  for (let p = 0; p < poolSize; p++) {
    const head = { title: text.title(), tags: Array.from({ length: rng.int(1, 4) }, () => text.word()), body: '' };
    const bare = JSON.stringify(head).slice(0, -1);
    const room = PAYLOAD_BYTES - bare.length - TAIL_ROOM;
    let body = text.prose(room + 40).replaceAll('\n', ' ').replaceAll('"', "'");
    body = body.slice(0, Math.max(0, room));
    pool.push(`${bare.slice(0, -2)}${JSON.stringify(body)}`);
  }
  return {
    seed,
    payload: (i) => `${pool[i % poolSize]!},"n":${i}}`,
    id: (i) => `c${i.toString().padStart(8, '0')}`,
  };
}
