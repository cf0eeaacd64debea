/**
 * Raw sockets for the registry's denial-of-service tests: a client that sends a request slowly,
 * one that stops sending, and the wait for the server to close the connection (the event these
 * tests wait on instead of sleeping).
 */
import { connect, type Socket } from 'node:net';
import { parseRawResponse, type RawResponse } from '../server/helpers.js';

export interface SlowClient {
  readonly socket: Socket;
  /** Resolves once the server closed the connection, with what it answered (null: nothing). */
  readonly closed: Promise<RawResponse | null>;
  /** Bytes of the body written so far. */
  sent(): number;
  /** Stops the trickle (the socket stays open). */
  stop(): void;
  /** Writes the rest at once and ends the request. */
  finish(rest: Buffer): void;
}

function hostPort(base: string): { host: string; port: number } {
  const u = new URL(base);
  return { host: u.hostname, port: Number(u.port) };
}

/**
 * Connects, sends `head` (everything up to and including the blank line, or a part of it), then
 * writes one byte of `body` (or "x" when it runs out) every `everyMs` until stopped or closed.
 * everyMs 0 writes nothing after the head: a client that has stalled.
 */
export function slowClient(base: string, head: string, options: { everyMs: number; body?: Buffer }): SlowClient {
  const { host, port } = hostPort(base);
  const socket = connect(port, host);
  const chunks: Buffer[] = [];
  let sent = 0;
  let timer: NodeJS.Timeout | null = null;
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => {}); // writes after the server closed fail; the close is what is asserted
  const closed = new Promise<RawResponse | null>((resolve) => {
    socket.on('close', () => {
      if (timer) clearInterval(timer);
      const raw = Buffer.concat(chunks);
      try {
        resolve(raw.length > 0 ? parseRawResponse(raw) : null);
      } catch {
        resolve(null); // not a whole response: as good as none
      }
    });
  });
  socket.write(head);
  if (options.everyMs > 0) {
    timer = setInterval(() => {
      if (socket.destroyed || !socket.writable) return;
      const b = options.body;
      socket.write(b && sent < b.length ? b.subarray(sent, sent + 1) : 'x');
      sent += 1;
    }, options.everyMs);
  }
  return {
    socket,
    closed,
    sent: () => sent,
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
    finish(rest: Buffer) {
      this.stop();
      socket.write(rest);
    },
  };
}

/** A request head for a raw socket (Host from `base`), ending in the blank line. */
export function head(base: string, requestLine: string, headers: Record<string, string | number> = {}): string {
  const { host, port } = hostPort(base);
  const lines = [requestLine, `Host: ${host}:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n`;
}
