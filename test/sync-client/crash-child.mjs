// One run of an app on FileStore for crash.test.ts, over the built client (dist/): it mutates and
// syncs until it is SIGKILLed, printing `ack <id>` once each mutation is committed. With
// FINAL=1 it syncs until the queue is empty and prints `done`. Plain JS so it starts without a
// TypeScript loader; `npm test` builds dist first.
import { FileStore, SyncClient, authTokens, loadDeviceId } from '../../dist/src/sync-client/node.js';

const env = process.env;
const round = Number(env.ROUND);
// mulberry32, seeded by the test's seed and the round: the child's choices replay with the seed.
let s = (Number(env.SEED) + round * 7919) >>> 0;
const random = () => {
  s = (s + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
// Pipes are synchronous on Linux: a line written here reaches the parent even if we die next.
const out = (line) => process.stdout.write(`${line}\n`);

const store = await FileStore.open(env.STORE, { compactAtBytes: 8192 });
const deviceId = await loadDeviceId(store);
const tokens = authTokens({ baseUrl: env.BASE, store, deviceId });
if (!(await tokens.signedIn())) await tokens.signIn(env.EMAIL, env.PASSWORD);
const client = new SyncClient({
  baseUrl: env.BASE,
  deviceId,
  schemaVersion: 1,
  store,
  tokens,
  random,
  onChanges() {},
  onRejected(rs) {
    out(`rejected ${JSON.stringify(rs.map((r) => r.result))}`);
  },
});

if (env.FINAL === '1') {
  do await client.syncOnce();
  while ((await client.pendingCount()) > 0);
  out('done');
  await store.close();
  process.exit(0);
}

for (let i = 0; ; i++) {
  const id = `r${round}-${i}`;
  await client.mutate({ entity: 'card', entity_id: id, op: 'upsert', payload: { round, i } });
  await client.mutate({ entity: 'tally', entity_id: 't', op: 'patch', payload: { [`r${round}_${i}`]: 1 } });
  out(`ack ${id}`);
  if (random() < 0.3) {
    out('sync');
    await client.syncOnce();
    out('synced');
  }
}
