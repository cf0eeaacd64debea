/**
 * Messages between the processes that serve one registry: the workers of `iqp server start
 * --workers N`, relayed by their primary (server/cluster.ts). A plugin tells its twins in the
 * other processes about a change it made (ctx.peers.broadcast) so they act on it at once, e.g. the
 * sync plugin waking long-polls waiting in another worker. Delivery is soon but not guaranteed (a
 * worker starting, or a server on another machine, misses it): plugins keep a backstop of their
 * own, such as polling the database.
 */
import cluster from 'node:cluster';

export interface PeerChannel {
  /** Sends `message` from plugin `plugin` to the same plugin in every other process. */
  send(plugin: string, message: string): void;
  /** Calls `fn` for every message a peer sent. */
  listen(fn: (plugin: string, message: string) => void): void;
}

/** The IPC message a worker sends to its primary, which forwards it unchanged to the other workers. */
export interface PeerMessage {
  readonly type: 'iqp:peer';
  readonly plugin: string;
  readonly message: string;
}

export function isPeerMessage(m: unknown): m is PeerMessage {
  const p = m as Partial<PeerMessage> | null;
  return typeof p === 'object' && p !== null && p.type === 'iqp:peer' && typeof p.plugin === 'string' && typeof p.message === 'string';
}

/** A process serving alone has no peers. */
export const NO_PEERS: PeerChannel = { send() {}, listen() {} };

/** The channel of a cluster worker: through its primary's IPC channel. */
export function workerPeers(): PeerChannel {
  if (!cluster.isWorker || !process.send) return NO_PEERS;
  return {
    send(plugin, message) {
      if (process.connected) process.send!({ type: 'iqp:peer', plugin, message } satisfies PeerMessage);
    },
    listen(fn) {
      process.on('message', (m: unknown) => {
        if (isPeerMessage(m)) fn(m.plugin, m.message);
      });
    },
  };
}
