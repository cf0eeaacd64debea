/**
 * Long-polls across the processes that serve one registry. A pull waiting in one process is woken
 * by a push through another, through the peers' messages the sync plugin sends; the database check
 * that would otherwise find the push is set to a minute, longer than the pull waits, so only the
 * message can wake it before the wait ends.
 *
 * Two servers in this process on one data directory, their peer channels linked in memory, pin
 * the pull to one and the push to the other; `iqp server start --workers 2`, where the cluster
 * module picks the worker, runs the same exchange through the primary's relay.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serverConfig } from '../../server/config.js';
import type { PeerChannel } from '../../server/plugins/peers.js';
import { type RunningServer, startServer } from '../../server/start.js';
import { childServerPerTest, fresh, iqpOnData, newRegistryDir, until } from '../server/helpers.js';

const PASSWORD = 'x7#kq2Lm-river-stone';
const servers = childServerPerTest();

/** A data directory with auth and sync enabled (long-polls looking at the database once a minute) and one account. */
async function syncDataDir(): Promise<string> {
  const dataDir = await newRegistryDir('iqp-sync-peers-');
  for (const id of ['auth', 'sync']) expect((await iqpOnData(dataDir, ['plugins', 'enable', id])).code).toBe(0);
  expect((await iqpOnData(dataDir, ['plugins', 'config', 'sync', '--set', 'wait_check_ms=60000'])).code).toBe(0);
  expect((await iqpOnData(dataDir, ['users', 'create', 'ann@example.org'], { IQP_USER_PASSWORD: PASSWORD })).code).toBe(0);
  return dataDir;
}

/**
 * Signs in, pulls once, then holds a pull with `wait` on `waitOn`, pushes through `pushTo` once the
 * metrics (of `metricsOf`) show the pull waiting, and returns the entity ids the waiting pull answered.
 */
async function wakeAcross(waitOn: string, pushTo: string, metricsOf: string): Promise<string[]> {
  const login = await fresh(waitOn, '/v1/auth/login', { method: 'POST', json: { email: 'ann@example.org', password: PASSWORD } });
  const token = (JSON.parse(login.body) as { access_token: string }).access_token;
  const first = await fresh(waitOn, '/v1/sync/pull', { method: 'POST', token, json: { device_id: 'ann-tablet-1', cursor: null, limit: 100 } });
  expect(first.status, first.body).toBe(200);
  const { cursor } = JSON.parse(first.body) as { cursor: string };
  // Waits up to 30 s, after which the pull would find the push in the database by itself: a pull
  // still waiting at 15 s was not woken, and the request fails.
  const waiting = fresh(waitOn, '/v1/sync/pull', { method: 'POST', token, json: { device_id: 'ann-tablet-1', cursor, limit: 100, wait: 30 }, timeoutMs: 15_000 });
  const waits = async () => /^iqp_sync_pull_waits_total 1$/m.test((await fresh(metricsOf, '/v1/metrics')).body);
  expect(await until(waits, 10_000), 'the pull waits').toBe(true);
  const mutation = { mutation_id: 'm1', entity: 'bookmark', entity_id: 'b1', op: 'upsert', payload: { ayah: 7 } };
  const pushed = await fresh(pushTo, '/v1/sync/push', { method: 'POST', token, json: { device_id: 'ann-phone-1', schema_version: 1, mutations: [mutation] } });
  expect(pushed.status, pushed.body).toBe(200);
  const woken = await waiting;
  expect(woken.status, woken.body).toBe(200);
  return (JSON.parse(woken.body) as { changes: { entity_id: string }[] }).changes.map((c) => c.entity_id);
}

/** Two channels that deliver each one's messages to the other, as a primary relays between two workers. */
function linkedPeers(): [PeerChannel, PeerChannel] {
  const listeners: [((plugin: string, message: string) => void)[], ((plugin: string, message: string) => void)[]] = [[], []];
  const channel = (mine: 0 | 1): PeerChannel => ({
    send: (plugin, message) =>
      queueMicrotask(() => {
        for (const fn of listeners[mine === 0 ? 1 : 0]) fn(plugin, message);
      }),
    listen: (fn) => void listeners[mine].push(fn),
  });
  return [channel(0), channel(1)];
}

describe('sync across the processes of one registry', () => {
  const running: RunningServer[] = [];
  afterEach(async () => {
    for (const s of running.splice(0).reverse()) await s.close();
  });

  it('wakes a pull waiting in one process when the user pushes through another', { timeout: 60_000 }, async () => {
    const dataDir = await syncDataDir();
    const [peersA, peersB] = linkedPeers();
    const config = serverConfig({ dataDir, host: '127.0.0.1', port: 0 });
    const a = await startServer(config, () => {}, { peers: peersA });
    running.push(a);
    const b = await startServer(config, () => {}, { lock: false, peers: peersB });
    running.push(b);
    expect(await wakeAcross(a.url, b.url, a.url)).toEqual(['b1']);
  });

  it('does so between the workers of iqp server start --workers 2, through their primary', { timeout: 60_000 }, async () => {
    const dataDir = await syncDataDir();
    const server = await servers.start(dataDir, ['--workers', '2']);
    expect(await wakeAcross(server.url, server.url, server.url)).toEqual(['b1']);
  });
});
