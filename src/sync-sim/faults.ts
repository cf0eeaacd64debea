/**
 * The network between a simulated device and the registry, with the faults real phones meet:
 * answers lost after the server acted, requests sent twice, answers held back so others overtake
 * them, a 401 `IQP_E_TOKEN_EXPIRED` in the middle of a sync, and the server SIGKILLed while a push
 * is in flight. Every choice comes from the device's seeded generator.
 */
import type { Rng } from '../prng.js';
import type { SimServer } from './server.js';

export interface FaultRates {
  /** The server acts, the answer never arrives. */
  readonly drop: number;
  /** The request reaches the server twice. */
  readonly duplicate: number;
  /** 401 IQP_E_TOKEN_EXPIRED before the request goes out. */
  readonly expire: number;
  /** The server is SIGKILLed while a push is in flight (then started again). */
  readonly kill: number;
}

export const NO_FAULTS: FaultRates = { drop: 0, duplicate: 0, expire: 0, kill: 0 };

export interface FaultCounts {
  dropped: number;
  duplicated: number;
  expired: number;
  killed: number;
  /** Pull answers that said reset (not a fault: what faults and time lead to). */
  resets: number;
}

type Init = { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal };

/** Lets other work run: a simulated network delay, in event-loop turns rather than wall-clock time. */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

const lost = () => new TypeError('fetch failed (the simulator lost the connection)');

export class Network {
  rates: FaultRates;
  readonly counts: FaultCounts = { dropped: 0, duplicated: 0, expired: 0, killed: 0, resets: 0 };

  constructor(
    private readonly server: SimServer,
    private readonly rng: Rng,
    rates: FaultRates,
    /** False once the device "crashed": its old client's requests go nowhere. */
    private readonly alive: () => boolean,
  ) {
    this.rates = rates;
  }

  /** A fetch for the client: `http://sim.invalid/v1/...` goes to the registry as it is now. */
  readonly fetch = async (url: string, init: Init): Promise<Response> => {
    if (!this.alive()) throw lost();
    await this.server.whenUp();
    const path = new URL(url).pathname + new URL(url).search;
    const real = `${this.server.url}${path}`;
    const r = this.rates;
    await turns(this.rng.int(0, 3));
    if (path.startsWith('/v1/sync/') && this.rng.float() < r.expire) {
      this.counts.expired++;
      return new Response(JSON.stringify({ error: { code: 'IQP_E_TOKEN_EXPIRED', message: 'The access token has expired.' } }), {
        status: 401,
        headers: { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' },
      });
    }
    // A request the server's kill left without an answer ends with that life of the server, as its connection would.
    const life = this.server.lifeSignal;
    const send = () => fetch(real, { method: init.method, headers: init.headers, body: init.body, signal: init.signal ? AbortSignal.any([init.signal, life]) : life });
    if (path === '/v1/sync/push' && this.rng.float() < r.kill && !this.server.busy) {
      this.counts.killed++;
      const inFlight = send().then(
        (res) => res.arrayBuffer().catch(() => undefined),
        () => undefined,
      );
      await turns(this.rng.int(0, 2));
      await this.server.restart();
      await inFlight;
      throw lost();
    }
    const duplicate = this.rng.float() < r.duplicate;
    // Settled results, so neither copy's failure is left unobserved while the other is awaited.
    const first = send().then(
      (res) => ({ res }),
      (error: unknown) => ({ error }),
    );
    if (duplicate) {
      this.counts.duplicated++;
      // The copy's answer is read and thrown away; whatever happened to it, the first one decides.
      await send().then(
        (res) => res.arrayBuffer().catch(() => undefined),
        () => undefined,
      );
    }
    const settled = await first;
    if ('error' in settled) throw settled.error;
    const res = settled.res;
    if (this.rng.float() < r.drop) {
      this.counts.dropped++;
      await res.arrayBuffer().catch(() => undefined);
      throw lost();
    }
    const body = await res.arrayBuffer();
    if (path === '/v1/sync/pull' && res.status === 200 && Buffer.from(body).includes('"reset":{"reason"')) this.counts.resets++;
    await turns(this.rng.int(0, 3));
    if (!this.alive()) throw lost();
    return new Response(body, { status: res.status, headers: res.headers });
  };
}
