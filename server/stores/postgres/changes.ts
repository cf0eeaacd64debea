/**
 * The change counter as a value in memory, because MetadataStore.generation() is synchronous and
 * asked on every cached read. The database's counter (migration 4) is followed four ways:
 * - read when following starts;
 * - NOTIFY iqp_changes, on a dedicated connection (LISTEN holds it, so never a pooled one);
 * - the value each of this process's own writes reads back inside its transaction (raise()), so a
 *   process sees its own writes at once, before the notification arrives;
 * - a backstop poll, for a notification lost with no error to tell (1 s by default).
 * Notifications missed while the listening connection was down are not replayed, so on every
 * reconnection the local value also moves by one (the epoch), whatever the row says: every cache
 * built before is dropped. The value is the database's counter plus the epoch; neither part goes
 * backwards, so neither does the sum.
 */
import type pg from 'pg';

export interface ChangeFeedOptions {
  /** A new, unconnected client for the listening connection. */
  readonly listener: () => pg.Client;
  /** Reads the counter through the pool. */
  readonly read: () => Promise<number>;
  readonly pollMs: number;
}

const CHANNEL = 'iqp_changes';
const READ = 'SELECT generation FROM registry_changes WHERE singleton = 1';
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;

export class ChangeFeed {
  readonly #options: ChangeFeedOptions;
  #counter = 0;
  #epoch = 0;
  #starting: Promise<void> | null = null;
  #closed = false;
  #listener: pg.Client | null = null;
  /** The schema whose notifications are ours: NOTIFY channels span the whole database. */
  #schema: string | null = null;
  #backoffMs = BACKOFF_MIN_MS;
  #retry: NodeJS.Timeout | null = null;
  #poll: NodeJS.Timeout | null = null;
  #polling = false;

  constructor(options: ChangeFeedOptions) {
    this.#options = options;
  }

  generation(): number {
    return this.#counter + this.#epoch;
  }

  /** Takes a value of the database's counter seen anywhere; an older one changes nothing. */
  raise(counter: number): void {
    if (counter > this.#counter) this.#counter = counter;
  }

  /** Reads the counter and starts following it; idempotent, and retried after a failed start. */
  start(): Promise<void> {
    this.#starting ??= this.#start().catch((err: unknown) => {
      this.#starting = null;
      throw err;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    if (this.#closed) return;
    this.raise(await this.#options.read());
    if (this.#closed) return;
    this.#poll = setInterval(() => this.#pollOnce(), this.#options.pollMs);
    this.#poll.unref();
    // A first connection that fails is retried like a lost one: the pool just answered, so the
    // database is there, and the poll covers the gap.
    if (!(await this.#listen())) this.#scheduleReconnect();
  }

  async stop(): Promise<void> {
    this.#closed = true;
    if (this.#poll) clearInterval(this.#poll);
    if (this.#retry) clearTimeout(this.#retry);
    const listener = this.#listener;
    this.#listener = null;
    await listener?.end().catch(() => undefined);
  }

  #pollOnce(): void {
    if (this.#polling || this.#closed) return;
    this.#polling = true;
    this.#options
      .read()
      .then((counter) => this.raise(counter))
      // A failed poll is only a missed backstop; the next one, or a notification, catches up.
      .catch(() => undefined)
      .finally(() => {
        this.#polling = false;
      });
  }

  /** Connects, LISTENs and reads the counter; true when it is following again. */
  async #listen(): Promise<boolean> {
    const client = this.#options.listener();
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    client.on('notification', (n) => this.#notified(n.channel, n.payload));
    try {
      await client.connect();
      const { rows } = await client.query<{ schema: string }>('SELECT current_schema() AS schema');
      this.#schema = rows[0]!.schema;
      await client.query(`LISTEN ${CHANNEL}`);
      // Read after LISTEN: a change committed in between is then in the row or in a notification.
      const counter = await client.query<{ generation: number }>(READ);
      if (this.#closed) {
        await client.end();
        return true;
      }
      this.raise(counter.rows[0]!.generation);
      this.#listener = client;
      this.#backoffMs = BACKOFF_MIN_MS;
      return true;
    } catch {
      await client.end().catch(() => undefined);
      return false;
    }
  }

  #notified(channel: string, payload: string | undefined): void {
    if (channel !== CHANNEL || payload === undefined) return;
    const colon = payload.lastIndexOf(':');
    if (payload.slice(0, colon) !== this.#schema) return;
    const counter = Number(payload.slice(colon + 1));
    if (Number.isSafeInteger(counter)) this.raise(counter);
  }

  #lost(client: pg.Client): void {
    if (client !== this.#listener || this.#closed) return;
    this.#listener = null;
    client.end().catch(() => undefined);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#retry) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, BACKOFF_MAX_MS);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      void this.#reconnect();
    }, delay);
    this.#retry.unref();
  }

  async #reconnect(): Promise<void> {
    if (this.#closed) return;
    if (await this.#listen()) {
      // What was notified while disconnected is lost: drop every cache built before.
      if (!this.#closed) this.#epoch += 1;
    } else {
      this.#scheduleReconnect();
    }
  }
}
