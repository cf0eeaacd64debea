/**
 * Seeded randomness for tests: the seed comes from IQP_TEST_SEED when set (to replay a failure),
 * else a fresh one, and is printed either way so that any run can be replayed.
 */
import { randomInt } from 'node:crypto';
import { Rng } from '../src/prng.js';

export function seededRng(what: string): { seed: number; rng: Rng } {
  const given = process.env['IQP_TEST_SEED'];
  if (given !== undefined && !/^\d{1,10}$/.test(given)) throw new Error(`IQP_TEST_SEED must be a whole number, got ${JSON.stringify(given)}`);
  const seed = given === undefined ? randomInt(2 ** 31) : Number(given) >>> 0;
  console.info(`${what}: seed ${seed} (IQP_TEST_SEED=${seed} replays it)`);
  return { seed, rng: new Rng(seed) };
}
