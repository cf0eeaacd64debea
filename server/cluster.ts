/**
 * `iqp server start --workers N` (N ≥ 2): N processes serving one data directory on one port.
 *
 * This process, the primary, takes the data directory's lock and keeps it for its life, runs
 * recovery (migrations, the plugins' migrations, the sweep of staged uploads and unreferenced
 * blobs) once, and only then forks the workers (server/worker.ts). Each worker is a whole registry
 * (startServer with `lock: false`) with its own database connections and caches; what one writes,
 * the others see on their next request through the store's change counter
 * (MetadataStore.generation), so no cache needs telling. Node's cluster module hands each new
 * connection to a worker in turn.
 *
 * The primary serves no requests. It replaces a worker that dies (backing off when they keep
 * dying), answers the workers' requests for cluster-wide metrics (prom-client's aggregator: each
 * worker's /metrics shows every worker's counters), and on stop asks every worker to finish its
 * requests, then releases the lock. It reads server.json once, before the plugins' migrations, and
 * hands that snapshot to every worker it ever starts (they ask for it over IPC: it may hold
 * secrets, which the environment would pass on to any process a plugin starts), so that a worker
 * replacing one that died runs the plugins and config the others run: `iqp plugins` changes wait
 * for the next start, as in one process. A replacement that fails to start is tried again,
 * backing off, until one serves. Killed outright, it takes the listening socket with it, and
 * the workers exit as soon as they notice (Node's cluster workers exit when their primary goes).
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry } from 'prom-client';
import { IqpError, isIqpError, toIqpError, type ErrorCode } from '../src/errors.js';
import type { Logger } from './app.js';
import { type ServerConfig, storageChoice } from './config.js';
import { type Recovery, recoverDataDir } from './datadir.js';
import { lockDataDir } from './lock.js';
import type { PluginStatus } from './plugins/host.js';
import { withPlugins } from './plugins/offline.js';
import { isPeerMessage, type PeerMessage } from './plugins/peers.js';
import { readServerFile, type ServerFile } from './plugins/server-file.js';

/** The worker's settings travel in its environment, as JSON (ServerConfig holds no secrets). */
export const WORKER_CONFIG_ENV = 'IQP_SERVER_WORKER_CONFIG';

/** What a worker and its primary say to each other over the cluster's IPC channel. */
export type WorkerMessage =
  | { readonly type: 'iqp:listening'; readonly url: string; readonly port: number; readonly plugins: PluginStatus }
  | { readonly type: 'iqp:failed'; readonly error: { readonly code?: string; readonly message: string; readonly hint?: string; readonly details?: Record<string, unknown> } }
  | { readonly type: 'iqp:metrics'; readonly id: number }
  | { readonly type: 'iqp:server-file' };

export type PrimaryMessage =
  | { readonly type: 'iqp:stop' }
  | { readonly type: 'iqp:server-file'; readonly file: ServerFile }
  | { readonly type: 'iqp:metrics'; readonly id: number; readonly text?: string; readonly error?: string };

export interface RunningCluster {
  readonly url: string;
  readonly recovery: Recovery;
  /** The plugins the first worker started, and those that failed (every worker loads the same ones). */
  readonly plugins: PluginStatus;
  /** The workers' process ids now (a replaced worker has a new one). */
  workers(): number[];
  /** Asks every worker to finish its requests and exit, waits for them (killing any still there after `graceMs`), and releases the lock. */
  close(graceMs?: number): Promise<void>;
}

const WORKER_FILE = fileURLToPath(new URL('./worker.js', import.meta.url));
/** A worker that dies within this long of starting counts as crashing; replacements of crashing workers back off. */
const HEALTHY_AFTER_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;

function isMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('iqp:');
}

/** A worker's start-up failure as the error the single-process server would have thrown (same code, same exit status). */
function failure(error: Extract<WorkerMessage, { type: 'iqp:failed' }>['error']): Error {
  if (error.code?.startsWith('IQP_E_')) {
    try {
      return new IqpError(error.code as ErrorCode, error.message, error.details, error.hint ? { hint: error.hint } : undefined);
    } catch {
      // not a code this iqp knows: fall through
    }
  }
  // A system error (EADDRINUSE, EACCES…) keeps the meaning it has in one process.
  if (error.code && /^E[A-Z]+$/.test(error.code)) return toIqpError(Object.assign(new Error(error.message), { code: error.code }));
  return new IqpError('IQP_E_INTERNAL', `A server worker failed to start: ${error.message}${error.code ? ` (${error.code})` : ''}`);
}

/** How a worker reports what stopped it from starting (the primary rethrows it: see failure()). */
export function failedMessage(err: unknown): WorkerMessage {
  if (isIqpError(err)) return { type: 'iqp:failed', error: { code: err.code, message: err.message, hint: err.hint, ...(err.details ? { details: err.details } : {}) } };
  const sys = err as NodeJS.ErrnoException;
  return { type: 'iqp:failed', error: { ...(typeof sys?.code === 'string' ? { code: sys.code } : {}), message: err instanceof Error ? err.message : String(err) } };
}

export async function startCluster(config: ServerConfig, count: number, log: Logger): Promise<RunningCluster> {
  if (!cluster.isPrimary) throw new Error('startCluster runs in the primary process only');
  // Settings that cannot work together are refused before anything is created or locked.
  const storage = storageChoice(config);
  const lock = lockDataDir(config.dataDir, 'iqp server start');
  const live = new Set<Worker>();
  /** Workers that listen (and so heed 'iqp:stop'); one still starting may not be listening for messages yet. */
  const ready = new WeakSet<Worker>();
  let stopping = false;
  try {
    const { stores, recovery } = await recoverDataDir(lock, storage);
    await stores.meta.close();
    const serverFile = readServerFile(config.dataDir);
    // Workers never take the lock, so the plugins' pending migrations run here, once, first.
    await withPlugins(config.dataDir, 'server start', async () => {}, { lockHeld: true, database: storage.database, serverFile });

    const aggregator = new AggregatorRegistry();
    cluster.setupPrimary({ exec: WORKER_FILE, args: [] });

    const answer = (worker: Worker, m: WorkerMessage | PeerMessage) => {
      if (m.type === 'iqp:peer') {
        // A plugin's message to its twins: to every other worker that is serving.
        for (const other of live) if (other !== worker && ready.has(other) && other.isConnected()) other.send(m);
        return;
      }
      if (m.type === 'iqp:server-file') {
        if (worker.isConnected()) worker.send({ type: 'iqp:server-file', file: serverFile } satisfies PrimaryMessage);
        return;
      }
      if (m.type !== 'iqp:metrics') return;
      const reply = (r: PrimaryMessage) => worker.isConnected() && worker.send(r);
      aggregator.clusterMetrics().then(
        (text) => reply({ type: 'iqp:metrics', id: m.id, text }),
        (err: unknown) => reply({ type: 'iqp:metrics', id: m.id, error: err instanceof Error ? err.message : String(err) }),
      );
    };

    /** Forks one worker on `port` and resolves once it listens; rejects with what stopped it. */
    const fork = (): Promise<{ worker: Worker; listening: Extract<WorkerMessage, { type: 'iqp:listening' }> }> => {
      const worker = cluster.fork({ [WORKER_CONFIG_ENV]: JSON.stringify(config) });
      live.add(worker);
      worker.once('exit', () => live.delete(worker));
      worker.on('message', (m: unknown) => (isPeerMessage(m) || isMessage(m)) && answer(worker, m));
      // The cluster module's own messages to a worker can fail under it: its answer to a worker's
      // request to listen, sent after a failed start killed that worker. Unheard, the failure would
      // end this process (exit 1) after it had reported the start's real error.
      worker.on('error', (err: Error) => {
        if (!stopping) log({ level: 'error', msg: 'a message to a server worker failed', pid: worker.process.pid, error: err.message });
      });
      return new Promise((resolve, reject) => {
        const onMessage = (m: unknown) => {
          if (!isMessage(m)) return;
          if (m.type === 'iqp:listening') {
            ready.add(worker);
            worker.off('exit', onExit);
            worker.off('message', onMessage);
            resolve({ worker, listening: m });
          } else if (m.type === 'iqp:failed') {
            worker.off('message', onMessage);
            reject(failure(m.error));
          }
        };
        const onExit = (code: number | null, signal: string | null) => {
          worker.off('message', onMessage);
          reject(new IqpError('IQP_E_INTERNAL', `A server worker exited (${signal ?? code}) before it listened.`));
        };
        worker.on('message', onMessage);
        worker.once('exit', onExit);
      });
    };

    // Every worker listens on the configured port, 0 included: the cluster module shares one socket
    // among all the workers that listen with the same arguments (the first to ask picks the port
    // for 0, the others get the same one). They start at once: each takes about as long as a
    // whole single-process start, and one after another they made the start N times as long.
    const [first] = await Promise.all([fork(), ...Array.from({ length: count - 1 }, () => fork())]);

    // Workers that died soon after starting, or replacements that failed to start, in a row: each backs the next start off further.
    let crashes = 0;
    const backoff = () => (crashes === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 250 * 2 ** (crashes - 1)));
    /** Starts a worker in place of one that died after `delay` ms, and again (backing off, up to MAX_BACKOFF_MS apart) while it fails to start. */
    const replace = (delay: number) => {
      setTimeout(() => {
        if (stopping) return;
        const since = Date.now();
        fork().then(
          ({ worker: next }) => {
            log({ level: 'info', msg: 'a replacement server worker is serving', pid: next.process.pid });
            supervise(next, since);
          },
          (err: unknown) => {
            if (stopping) return;
            crashes += 1;
            const retry = backoff();
            log({ level: 'error', msg: 'a replacement server worker failed to start; trying again', error: err instanceof Error ? err.message : String(err), restart_in_ms: retry });
            replace(retry);
          },
        );
      }, delay).unref();
    };
    const supervise = (worker: Worker, startedAt: number) => {
      worker.once('exit', (code, signal) => {
        if (stopping) return;
        crashes = Date.now() - startedAt < HEALTHY_AFTER_MS ? crashes + 1 : 0;
        const delay = backoff();
        log({ level: 'error', msg: 'a server worker exited; starting another', pid: worker.process.pid, exit: signal ?? code, restart_in_ms: delay });
        replace(delay);
      });
    };
    const now = Date.now();
    for (const w of live) supervise(w, now);

    return {
      url: first.listening.url,
      recovery,
      plugins: first.listening.plugins,
      workers: () => [...live].map((w) => w.process.pid!).filter((pid) => pid !== undefined),
      async close(graceMs = 8_000) {
        stopping = true;
        const exits = [...live].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
        // A worker still starting has served nothing: SIGTERM ends it before it could ask for more time.
        for (const w of live) {
          if (ready.has(w) && w.isConnected()) w.send({ type: 'iqp:stop' } satisfies PrimaryMessage);
          else if (!w.isDead()) w.process.kill('SIGTERM');
        }
        const timer = setTimeout(() => {
          for (const w of live) if (!w.isDead()) w.process.kill('SIGKILL');
        }, graceMs);
        await Promise.all(exits);
        clearTimeout(timer);
        lock.release();
      },
    };
  } catch (err) {
    stopping = true;
    for (const w of live) if (!w.isDead()) w.process.kill('SIGKILL');
    lock.release();
    throw err;
  }
}
