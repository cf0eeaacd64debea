/**
 * The web app under test: a table of entities kept in the page (and in an IndexedDB database of its
 * own, so a reopened tab still shows them), edited optimistically and synced by the real client,
 * loaded unbundled from the compiled dist/src/sync-client/ as a browser loads any ES module.
 * window.app is what the test drives. The registry's URL and a device name come from the query
 * string (?registry=http://127.0.0.1:1234&name=A).
 *
 * Plain JavaScript: the page runs exactly what is served, with no build step of the test's own.
 */
import { IndexedDbStore, SyncClient, authTokens, loadDeviceId } from '/sync-client/index.js';

const params = new URLSearchParams(location.search);
const baseUrl = params.get('registry');
const deviceName = params.get('name') ?? 'browser';
if (!baseUrl) throw new Error('?registry= is missing');

/** The client's own state: queue, cursor, known versions, refresh token, device id. */
const store = new IndexedDbStore('iqp-sync');
/** The app's data, entity/id → payload JSON: what the user sees, online or not. */
const table = new IndexedDbStore('app-table');
const rows = new Map();
const conflicts = [];
const rejected = [];
const statuses = [];
/** Pulls sent so far, the in-flight ones' `wait`, and which pull brought each entity last. */
const net = { pulls: 0, open: new Map(), arrivedOn: {} };

const key = (entity, id) => `${entity}/${id}`;

/** Records the pulls the client sends (observed, not changed), then lets the browser's fetch do the rest. */
async function observedFetch(url, init) {
  if (!new URL(url).pathname.endsWith('/pull')) return fetch(url, init);
  const n = ++net.pulls;
  net.open.set(n, JSON.parse(init.body).wait ?? 0);
  try {
    return await fetch(url, init);
  } finally {
    net.open.delete(n);
  }
}

async function applyChanges(changes) {
  const set = {};
  const del = [];
  for (const c of changes) {
    const k = key(c.entity, c.entity_id);
    net.arrivedOn[k] = net.pulls;
    if (c.op === 'delete') {
      rows.delete(k);
      del.push(k);
    } else {
      rows.set(k, c.payload);
      set[k] = JSON.stringify(c.payload);
    }
  }
  // The app's table is written before the client stores its cursor: a tab closed in between pulls the page again.
  await table.write({ set, del });
}

for (const [k, v] of await table.scan('')) rows.set(k, JSON.parse(v));
const deviceId = await loadDeviceId(store);
const tokens = authTokens({ baseUrl, store, deviceId, deviceName });
const client = new SyncClient({
  baseUrl,
  deviceId,
  deviceName,
  schemaVersion: 1,
  store,
  tokens,
  fetch: observedFetch,
  onChanges: applyChanges,
  onConflicts: (cs) => void conflicts.push(...cs),
  onRejected: (rs) => void rejected.push(...rs),
  onStatus: (status, detail) => void statuses.push(detail.code ? `${status}:${detail.code}` : status),
});

// What a web app does with the browser's connectivity: stop trying while offline (in-flight requests
// are aborted and replayed later), and sync at once when the network is back rather than after
// whatever backoff the failed attempts had reached.
addEventListener('offline', () => client.pause());
addEventListener('online', () => client.resume());

function startSync() {
  if (!navigator.onLine) client.pause();
  client.start();
}

async function view() {
  const sorted = Object.fromEntries([...rows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    rows: sorted,
    pending: await client.pendingCount(),
    signedIn: await tokens.signedIn(),
    status: client.status ?? null,
    online: navigator.onLine,
    conflicts,
    rejected,
    statuses,
    pulls: net.pulls,
    openPolls: [...net.open].filter(([, wait]) => wait > 0).map(([n]) => n),
    arrivedOn: net.arrivedOn,
  };
}

/** Views read for one wait of the test, by its token: page.waitForFunction polls synchronously. */
const polls = new Map();

window.app = {
  deviceId,
  async signIn(email, password) {
    await tokens.signIn(email, password);
    startSync();
  },
  async edit(entity, id, op, payload) {
    const k = key(entity, id);
    if (op === 'delete') {
      rows.delete(k);
      await table.write({ del: [k] });
    } else {
      const next = op === 'patch' ? { ...rows.get(k), ...payload } : payload;
      rows.set(k, next);
      await table.write({ set: { [k]: JSON.stringify(next) } });
    }
    return client.mutate({ entity, entity_id: id, op, ...(payload ? { payload } : {}) });
  },
  view,
  /**
   * The newest view read since this wait began (null until the first is in), and another read
   * started if none is running: a waitForFunction predicate cannot await, so it polls this.
   */
  poll(token) {
    let p = polls.get(token);
    if (!p) polls.set(token, (p = { view: null, reading: false }));
    if (!p.reading) {
      p.reading = true;
      view()
        .then((v) => void (p.view = v))
        .catch((err) => console.error('view failed', err))
        .finally(() => void (p.reading = false));
    }
    return p.view;
  },
  endPoll(token) {
    polls.delete(token);
  },
};

// Signed in before (a reopened tab): carry on syncing without asking again.
if (await tokens.signedIn()) startSync();
window.app.booted = true;
