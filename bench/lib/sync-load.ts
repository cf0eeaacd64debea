/**
 * The benchmark's clients and the threads they run on. The same loops drive both peers: each
 * push client takes the next batch from a shared counter and pushes it; each pull client pages
 * through the whole feed and starts again, checking that every completed pass returned each
 * document once.
 *
 * With one thread the clients share this process's event loop, as before. With more, client c runs
 * on thread c % threads, each a worker thread with a peer client of its own (the same devices and
 * tokens, its own connections), and the counters are shared through Atomics. Clients that parse
 * every answer are work the server under test does not do: on a machine as small as the
 * benchmark's, one event loop parsing 550 KB pages for four devices was the ceiling of the pull
 * (75 % of a core busy while a fifth of the machine sat idle). Threads take that ceiling away; the
 * clients still share the machine's cores with the server, and their CPU is still reported.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { type PeerClient, type PeerSpec, peerClient, type SyncPeer } from './sync-client.js';
import { docSet } from './sync-docs.js';

/** Milliseconds on one clock for every thread (performance.now() counts from each thread's start). */
const now = (): number => performance.timeOrigin + performance.now();

export interface PushJob {
  readonly kind: 'push';
  /** The clients this runner drives. */
  readonly clients: readonly number[];
  readonly first: number;
  readonly count: number;
  readonly batch: number;
  /** Int32 [next batch, documents done], shared by every runner. */
  readonly counters: SharedArrayBuffer;
}

export interface PullJob {
  readonly kind: 'pull';
  readonly clients: readonly number[];
  /** When to stop starting pages (now()'s clock). */
  readonly end: number;
  readonly limit: number;
  /** Changes in a whole pass over the feed. */
  readonly expected: number;
}

export type Job = PushJob | PullJob;

export interface PushOut {
  /** ms of each push request. */
  readonly times: number[];
  /** Pairs: when a push ended (now()'s clock) and how many documents were done by then. */
  readonly marks: number[];
  readonly retries: number;
}

export interface PullOut {
  /** ms of each page. */
  readonly times: number[];
  readonly changes: number;
  readonly passes: number;
  readonly bytes: number;
  readonly retries: number;
}

type Out<J extends Job> = J extends PushJob ? PushOut : PullOut;

async function pushClients(peer: PeerClient, job: PushJob): Promise<PushOut> {
  const counters = new Int32Array(job.counters);
  const batches = Math.ceil(job.count / job.batch);
  const times: number[] = [];
  const marks: number[] = [];
  const before = peer.retries();
  await Promise.all(
    job.clients.map(async (client) => {
      for (;;) {
        const k = Atomics.add(counters, 0, 1);
        if (k >= batches) return;
        const from = job.first + k * job.batch;
        const to = Math.min(job.first + job.count, from + job.batch);
        const t0 = now();
        await peer.push(client, from, to);
        const t1 = now();
        times.push(t1 - t0);
        marks.push(t1, Atomics.add(counters, 1, to - from) + (to - from));
      }
    }),
  );
  return { times, marks, retries: peer.retries() - before };
}

async function pullClients(peer: PeerClient, job: PullJob): Promise<PullOut> {
  const times: number[] = [];
  let changes = 0;
  let passes = 0;
  let bytes = 0;
  const before = peer.retries();
  await Promise.all(
    job.clients.map(async (client) => {
      let cursor: string | null = null;
      let inPass = 0;
      while (now() < job.end) {
        const t0 = now();
        const page = await peer.pull(client, cursor, job.limit);
        times.push(now() - t0);
        changes += page.count;
        bytes += page.bytes;
        inPass += page.count;
        cursor = page.cursor;
        if (!page.more) {
          if (inPass !== job.expected) throw new Error(`${peer.name}: a pass over the feed gave ${inPass} changes, not ${job.expected}`);
          passes++;
          inPass = 0;
          cursor = null;
        }
      }
    }),
  );
  return { times, changes, passes, bytes, retries: peer.retries() - before };
}

function runJob(peer: PeerClient, job: Job): Promise<PushOut | PullOut> {
  return job.kind === 'push' ? pushClients(peer, job) : pullClients(peer, job);
}

interface Reply {
  readonly out?: PushOut | PullOut;
  readonly error?: string;
}

/** A client thread: its own peer client, one job at a time. */
class ClientThread {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  /** Settles once the thread has made its documents and peer client (not while a part is measured). */
  readonly #ready: Promise<void>;
  #failed: Error | null = null;

  constructor(spec: PeerSpec, seed: number) {
    this.#worker = new Worker(new URL(import.meta.url), { workerData: { spec, seed } });
    this.#exited = new Promise((resolve) => this.#worker.once('exit', () => resolve()));
    this.#ready = new Promise((resolve, reject) => {
      this.#worker.once('message', () => resolve());
      this.#worker.once('exit', (code) => reject(new Error(`a client thread exited (${code}) before it was ready`)));
    });
    this.#ready.catch(() => undefined);
    this.#worker.on('error', (err) => (this.#failed = err));
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  async run(job: Job): Promise<PushOut | PullOut> {
    await this.#ready;
    if (this.#failed) throw this.#failed;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.#worker.off('message', onMessage);
        reject(err);
      };
      const onMessage = (reply: Reply) => {
        this.#worker.off('error', onError);
        if (reply.error !== undefined) reject(new Error(reply.error));
        else resolve(reply.out!);
      };
      this.#worker.once('message', onMessage);
      this.#worker.once('error', onError);
      this.#worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    this.#worker.postMessage({ kind: 'close' });
    await this.#exited;
  }
}

/** The clients of one peer, on `threads` threads (1: this one). */
export class ClientLoad {
  readonly #threads: ClientThread[];
  #retries = 0;

  private constructor(
    readonly peer: SyncPeer,
    threads: number,
    seed: number,
  ) {
    this.#threads = threads > 1 ? Array.from({ length: threads }, () => new ClientThread(peer.spec, seed)) : [];
  }

  /** Starts the threads and waits until each is ready. */
  static async open(peer: SyncPeer, threads: number, seed: number): Promise<ClientLoad> {
    const load = new ClientLoad(peer, Math.max(1, Math.min(threads, peer.spec.clients)), seed);
    try {
      await Promise.all(load.#threads.map((t) => t.ready()));
    } catch (err) {
      await load.close();
      throw err;
    }
    return load;
  }

  get threads(): number {
    return Math.max(1, this.#threads.length);
  }

  /** 429/503 answers waited out by the clients on every thread (this one's peer included). */
  retries(): number {
    return this.#retries + this.peer.retries();
  }

  /** Runs `job(clients)` for each thread's share of clients 0…n-1; one answer per thread. */
  async run<J extends Job>(clients: number, job: (clients: readonly number[]) => J): Promise<Array<Out<J>>> {
    const share = (t: number, of: number) => Array.from({ length: clients }, (_, c) => c).filter((c) => c % of === t);
    if (this.#threads.length === 0) return [(await runJob(this.peer, job(share(0, 1)))) as Out<J>];
    const outs = (await Promise.all(this.#threads.map((thread, t) => thread.run(job(share(t, this.#threads.length)))))) as Array<Out<J>>;
    for (const o of outs) this.#retries += o.retries;
    return outs;
  }

  async close(): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.close()));
  }
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const { spec, seed } = workerData as { spec: PeerSpec; seed: number };
  const peer = peerClient(spec, docSet(seed));
  port.postMessage('ready');
  port.on('message', (job: Job | { kind: 'close' }) => {
    if (job.kind === 'close') {
      void peer.close().finally(() => port.close());
      return;
    }
    runJob(peer, job).then(
      (out) => port.postMessage({ out } satisfies Reply),
      (err: unknown) => port.postMessage({ error: err instanceof Error ? err.message : String(err) } satisfies Reply),
    );
  });
}
