/**
 * The simulator's own harness: what it does around the client must not fail a run the registry and
 * client got right. A device signs in straight to the registry; another device's fault may SIGKILL
 * the registry while that request is in flight.
 */
import { expect, it, vi } from 'vitest';
import { NO_FAULTS, turns } from '../../src/sync-sim/faults.js';
import { SimDevice } from '../../src/sync-sim/device.js';
import { Rng } from '../../src/prng.js';
import { simServerForFile } from './simulate.js';

const server = simServerForFile();

it('a device whose sign-in the registry is killed under waits for the restart and signs in', async () => {
  const password = 'harness-Password-4d1e!';
  await server.createUser('harness@sim.example', password);
  const device = new SimDevice('harness-d0', 'harness', 'harness@sim.example', password, server, new Rng(7), NO_FAULTS, 0);
  // The registry is killed once the sign-in request has reached it (password checking holds it there).
  const real = globalThis.fetch;
  let sent!: () => void;
  const inFlight = new Promise<void>((resolve) => (sent = resolve));
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
    const res = real(input, init);
    if (String(input).endsWith('/v1/auth/login')) sent();
    return res;
  });
  try {
    // Settled, so a failure is this test's answer rather than an unhandled rejection.
    const signingIn = device.signIn().then(
      () => null,
      (err: unknown) => err,
    );
    await inFlight;
    await turns(20);
    const kills = server.kills;
    await server.restart();
    expect(await signingIn).toBeNull();
    expect(server.kills).toBe(kills + 1);
    expect(await device.tokens.accessToken()).toMatch(/\S+/);
  } finally {
    spy.mockRestore();
  }
});
