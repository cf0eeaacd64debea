/**
 * Stopping a registry (SIGTERM, a rolling restart) lets what is in progress end well: a pull waiting
 * for changes answers at once with what there is, and a push whose body is still arriving is
 * received, applied and answered before the server closes.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { device, type SyncHarness, syncHarness } from './support.js';

let h: SyncHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/** A POST whose body is sent in two halves: the second only when `rest` is called. */
function slowPost(url: string, body: string, token: string): { rest: () => void; answer: Promise<{ status: number; body: any }> } {
  const bytes = Buffer.from(body);
  const half = Math.floor(bytes.length / 2);
  const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': bytes.length, authorization: `Bearer ${token}` } });
  const answer = new Promise<{ status: number; body: any }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  req.write(bytes.subarray(0, half));
  return { rest: () => req.end(bytes.subarray(half)), answer };
}

describe('stopping the registry', () => {
  it('answers a waiting pull at once and finishes a push whose body is still arriving', async () => {
    h = await syncHarness({ max_wait_s: 30 });
    const phone = await device(h, 'ann@example.org', 'phone-stop-1');
    const cursor = (await phone.pullAll(null)).cursor;
    const waits = async () => (await h!.running.registry.metrics.registry.getSingleMetricAsString('iqp_sync_pull_waits_total')).includes('iqp_sync_pull_waits_total 1');
    const waiting = phone.pull(cursor, { wait: 30 });
    while (!(await waits())) await new Promise((r) => setImmediate(r));
    const mutations = [{ mutation_id: 'stop-m1', entity: 'card', entity_id: '1', op: 'upsert', payload: { front: 'kept through the stop' } }];
    // The next request the server takes is the push: once its headers are in, it is in progress when the stop begins.
    const received = new Promise((r) => h!.running.server.once('request', r));
    const push = slowPost(`${h.syncUrl}/push`, JSON.stringify({ device_id: phone.id, schema_version: 1, mutations }), phone.token);
    await received;
    const stopped = h.close();
    h = null;
    push.rest();
    const [pulled, pushed] = await Promise.all([waiting, push.answer]);
    await stopped;
    expect(pulled.status).toBe(200);
    expect(pulled.body.changes).toEqual([]);
    expect(pushed.status).toBe(200);
    expect(pushed.body.results.map((r: { status: string }) => r.status)).toEqual(['applied']);
  });
});
