/** The simulator's side of its registry child: start it, talk to it, SIGKILL it, start it again. */
import { type ChildProcess, fork } from 'node:child_process';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildRequest } from './server-child.js';

/** The compiled child (tests import this module from source, where only the .ts exists). */
const here = fileURLToPath(new URL('.', import.meta.url));
const CHILD = here.includes(`${sep}dist${sep}`) ? join(here, 'server-child.js') : join(here, '..', '..', 'dist', 'src', 'sync-sim', 'server-child.js');

export class SimServer {
  private child: ChildProcess | null = null;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** The plugins' clock offset, carried across restarts. */
  private skewMs = 0;
  url = '';
  /** Resolves when the server is up (again); devices wait on it instead of spinning while it is down. */
  private upWaiters: (() => void)[] = [];
  kills = 0;
  /** True while a kill and restart is under way (one at a time). */
  busy = false;
  /** Aborted when this life of the server is killed: requests sent to it end then, as their connections would. */
  #life = new AbortController();

  constructor(private readonly dataDir: string) {}

  /** A signal for a request to this life of the server: aborted when it is killed. */
  get lifeSignal(): AbortSignal {
    return this.#life.signal;
  }

  get up(): boolean {
    return this.child !== null && this.url !== '';
  }

  /** Waits until the server answers (again). */
  whenUp(): Promise<void> {
    return this.up ? Promise.resolve() : new Promise((resolve) => this.upWaiters.push(resolve));
  }

  async start(): Promise<void> {
    const child = fork(CHILD, [this.dataDir, String(this.skewMs)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.child = child;
    child.on('message', (m: { type: string; id?: number; url?: string; result?: unknown; error?: string }) => {
      if (m.type === 'ready') {
        this.url = m.url!;
        for (const w of this.upWaiters.splice(0)) w();
      } else if (m.type === 'done') {
        const p = this.pending.get(m.id!);
        this.pending.delete(m.id!);
        if (m.error !== undefined) p?.reject(new Error(m.error));
        else p?.resolve(m.result);
      }
    });
    const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`the simulator's registry exited (${code ?? signal}) before it was ready`))));
    await Promise.race([this.whenUp(), exited]);
    exited.catch(() => undefined);
  }

  private request(r: Omit<ChildRequest, 'id'>): Promise<unknown> {
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child!.send({ ...r, id });
    });
  }

  async createUser(email: string, password: string): Promise<string> {
    return (await this.request({ type: 'user', email, password })) as string;
  }

  /** Moves the registry's clock forward (tokens expire; quiet devices fall behind the horizon). */
  async advance(ms: number): Promise<void> {
    this.skewMs = (await this.request({ type: 'advance', ms })) as number;
  }

  async compact(): Promise<void> {
    await this.request({ type: 'compact' });
  }

  /** SIGKILL, as a crash or a power cut would: whatever was in flight is cut off. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    this.url = '';
    this.kills++;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await gone;
    this.#life.abort(new TypeError('fetch failed (the registry was killed)'));
    this.#life = new AbortController();
    for (const p of this.pending.values()) p.reject(new Error('the registry was killed'));
    this.pending.clear();
  }

  async restart(): Promise<void> {
    this.busy = true;
    try {
      await this.kill();
      await this.start();
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    this.url = '';
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await gone;
  }
}
