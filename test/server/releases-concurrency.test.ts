/**
 * Publishing is one transaction: concurrent publish requests over real sockets against one
 * registry (on 127.0.0.1:0, real SQLite) settle with exactly one winner, one audit entry and one
 * step of the channel's sequence; the losers get the error that says why. Run twice: with the
 * SQLite release store as startServer wires it, and with its answers deferred to a later turn of
 * the event loop, as a networked store's would be, so that requests interleave in the service.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltPack, errorCode } from './helpers.js';
import { channelSequence, draftWith, postSigned, publishPack, releaseAudit, type ReleaseRegistry, signRelease, startReleaseRegistry } from './release-helpers.js';

const N = 12;
const ROUNDS = 4;

/** Status and error code of each reply, e.g. "200" or "409 IQP_E_RELEASE_STATE", counted. */
function tally(replies: { status: number; headers: Headers; body: Buffer; json(): any }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of replies) {
    const key = r.status === 200 ? '200' : `${r.status} ${errorCode(r)}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

describe.each([
  { store: 'the SQLite release store', slowStore: false },
  { store: 'a release store answering asynchronously', slowStore: true },
])('concurrent publishing with $store', ({ slowStore }) => {
  let reg: ReleaseRegistry;
  let text: BuiltPack;
  let audio: BuiltPack;

  beforeAll(async () => {
    reg = await startReleaseRegistry({ slowStore });
    text = await publishPack(reg, 'race.text', '1.0.0');
    audio = await publishPack(reg, 'race.audio', '1.0.0');
  });
  afterAll(() => reg?.close());

  it(`${N} concurrent publishes of one release with the same signed manifest: one 200, the rest IQP_E_RELEASE_STATE (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      const r = await draftWith(reg, `same-${round}`, { text, audio });
      const signed = await signRelease(reg, r.id);
      const sequenceBefore = channelSequence(reg, 'stable');
      const replies = await Promise.all(Array.from({ length: N }, () => postSigned(reg, r.id, signed)));
      expect(tally(replies), `round ${round}`).toEqual({ '200': 1, '409 IQP_E_RELEASE_STATE': N - 1 });
      expect(releaseAudit(reg, r.id).filter((e) => e.action === 'release.publish')).toHaveLength(1);
      expect(channelSequence(reg, 'stable')).toBe(sequenceBefore + 1);
      expect(replies.find((x) => x.status === 200)!.json()).toMatchObject({ id: r.id, status: 'published', sequence: sequenceBefore + 1 });
    }
  });

  it(`two drafts on one channel signed with the same sequence, published at once: one wins, the other IQP_E_RELEASE_SEQUENCE (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      const a = await draftWith(reg, `a-${round}`, { text });
      const b = await draftWith(reg, `b-${round}`, { audio });
      const [sa, sb] = [await signRelease(reg, a.id), await signRelease(reg, b.id)];
      expect(sa.manifest.sequence).toBe(sb.manifest.sequence);
      const sequenceBefore = channelSequence(reg, 'stable');
      const replies = await Promise.all([postSigned(reg, a.id, sa), postSigned(reg, b.id, sb), postSigned(reg, a.id, sa), postSigned(reg, b.id, sb)]);
      const winners = replies.filter((x) => x.status === 200).map((x) => x.json().id as number);
      expect(winners, `round ${round}: ${JSON.stringify(tally(replies))}`).toHaveLength(1);
      const loser = winners[0] === a.id ? b.id : a.id;
      const loserReplies = replies.filter((_, i) => (i % 2 === 0 ? a.id : b.id) === loser);
      expect(loserReplies.map((x) => `${x.status} ${errorCode(x)}`)).toEqual(['409 IQP_E_RELEASE_SEQUENCE', '409 IQP_E_RELEASE_SEQUENCE']);
      expect(channelSequence(reg, 'stable')).toBe(sequenceBefore + 1);
      expect(releaseAudit(reg, loser).map((e) => e.action)).not.toContain('release.publish');
      // The loser signs again with the next sequence and gets through.
      const again = await postSigned(reg, loser, await signRelease(reg, loser));
      expect(again.status, again.body.toString()).toBe(200);
      expect(again.json().sequence).toBe(sequenceBefore + 2);
    }
  });
});
