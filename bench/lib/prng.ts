/** The benchmarks' seeded generators live with the simulator's, in src/prng.ts. */
export { Rng, TextGen } from '../../src/prng.js';
