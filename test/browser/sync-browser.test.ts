/**
 * The sync client in a real browser: Chromium, driven by playwright-core, loads the compiled client
 * (dist/src/sync-client/*.js, plain ES modules, no bundler) into a web app served from one origin,
 * which syncs through a real registry on another origin (CORS). Two browser contexts are two
 * devices of one account, each with its own IndexedDB.
 *
 * Chromium: /usr/bin/chromium (Debian's `chromium` package; .ci/run installs it), or the binary
 * that IQP_CHROMIUM names (any Chromium or Chrome, e.g. IQP_CHROMIUM=/usr/bin/google-chrome).
 * Without one the tests are skipped, except under CI=true, where they fail.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/sync-client/protocol.js';
import { type AppView, type BrowserRegistry, CHROMIUM, Device, type StaticSite, browserRegistry, staticSite } from './support.js';

const CI = Boolean(process.env['CI']) && process.env['CI'] !== 'false' && process.env['CI'] !== '0';
const ANN = 'ann@example.org';

/** The app's rows equal `want`, whatever the order of keys inside the payloads (runs in the page). */
function rowsEqual(view: AppView, want: Record<string, JsonObject>): boolean {
  const canon = (x: unknown): string =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? `{${Object.keys(x)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canon((x as Record<string, unknown>)[k])}`)
          .join(',')}}`
      : JSON.stringify(x);
  return canon(view.rows) === canon(want);
}

describe.skipIf(!existsSync(CHROMIUM) && !CI)('the sync client in Chromium', () => {
  let browser: Browser | undefined;
  beforeAll(async () => {
    // Missing under CI=true: each test fails on it (below), so the run counts them as failed, not skipped.
    if (!existsSync(CHROMIUM)) return;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 30_000 });
  });
  afterAll(async () => {
    await browser?.close();
  });

  let site: StaticSite | undefined;
  let registry: BrowserRegistry | undefined;
  let devices: Device[] = [];
  afterEach(async () => {
    for (const d of devices) await d.close();
    devices = [];
    await registry?.close();
    await site?.close();
    registry = site = undefined;
  });

  /** The app's host, a registry that allows its origin, an account, and two devices signed in to it. */
  async function twoDevices(): Promise<{ reg: BrowserRegistry; a: Device; b: Device }> {
    if (!browser) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set IQP_CHROMIUM to a Chromium or Chrome binary`);
    site = await staticSite();
    const reg = (registry = await browserRegistry(site.origin));
    expect(new URL(reg.base).origin).not.toBe(site.origin);
    await reg.createUser(ANN);
    const opened = await Promise.allSettled([Device.open(browser, site, reg, 'A'), Device.open(browser, site, reg, 'B')]);
    for (const o of opened) if (o.status === 'fulfilled') devices.push(o.value);
    for (const o of opened) if (o.status === 'rejected') throw o.reason;
    const [a, b] = devices as [Device, Device];
    await Promise.all([a.signIn(ANN), b.signIn(ANN)]);
    return { reg, a, b };
  }

  it('two devices: live changes over the long poll, offline edits, a conflict both hear of, and convergence on the server’s export', async () => {
    const { reg, a, b } = await twoDevices();
    const [idA, idB] = [await a.deviceId(), await b.deviceId()];
    expect(idA).not.toBe(idB);

    // Live: B waits at head on a long poll, and A's edits come back on that very poll.
    await b.until('B to hold a long poll', (v) => v.openPolls.length > 0, null);
    const poll = (await b.view()).openPolls[0]!;
    await a.edit('card', '1', 'upsert', { front: 'ab', back: 'b' });
    await a.edit('card', '2', 'upsert', { front: 'two', back: '2' });
    await a.edit('card', '3', 'upsert', { front: 'three' });
    const first = { 'card/1': { front: 'ab', back: 'b' }, 'card/2': { front: 'two', back: '2' }, 'card/3': { front: 'three' } };
    await b.until('B to show A’s cards', rowsEqual, first);
    expect((await b.view()).arrivedOn['card/1']).toBe(poll);
    await a.until('A to push its queue', (v) => v.pending === 0, null);

    // A goes offline and keeps working: every edit is committed locally and queued.
    await a.setOffline(true);
    await a.until('A to notice it is offline', (v) => !v.online && v.status === 'paused', null);
    await a.edit('card', '1', 'patch', { front: 'A offline' });
    await a.edit('card', '2', 'patch', { front: 'two by A' });
    await a.edit('card', '3', 'delete');
    await a.edit('card', '4', 'upsert', { front: 'four, made offline' });
    expect((await a.view()).pending).toBe(4);

    // Meanwhile B, online, edits the same field of card 1, another field of card 2, and a new card.
    await b.edit('card', '1', 'patch', { front: 'B online' });
    await b.edit('card', '2', 'patch', { back: '2 by B' });
    await b.edit('card', '5', 'upsert', { front: 'five' });
    await b.until('B to push its queue', (v) => v.pending === 0, null);
    const offline = await a.view();
    expect(offline.rows['card/5']).toBeUndefined();
    expect(offline.rows['card/1']).toEqual({ front: 'A offline', back: 'b' });
    expect(offline.pending).toBe(4);

    // Back online: A pushes what it queued (arriving later, its value of card 1's front wins) and pulls B's work.
    await a.setOffline(false);
    await a.until('A to push its offline queue', (v) => v.online && v.pending === 0, null);
    const server = await reg.exportRows(ANN);
    expect(server).toEqual({
      'card/1': { front: 'A offline', back: 'b' },
      'card/2': { front: 'two by A', back: '2 by B' },
      'card/4': { front: 'four, made offline' },
      'card/5': { front: 'five' },
    });
    await a.until('A to converge on the server’s state', rowsEqual, server);
    await b.until('B to converge on the server’s state', rowsEqual, server);

    // The field both changed is one conflict, and both devices' apps are told of it.
    for (const d of [a, b]) await d.until('the conflict to reach the app', (v) => v.conflicts.length > 0, null);
    const [va, vb] = [await a.view(), await b.view()];
    expect(va.rows).toEqual(server);
    expect(vb.rows).toEqual(server);
    for (const v of [va, vb]) {
      expect(v.conflicts).toHaveLength(1);
      expect(v.conflicts[0]).toMatchObject({
        entity: 'card',
        entity_id: '1',
        fields: ['front'],
        winner: { front: 'A offline' },
        loser: { front: 'B online' },
        winner_device: idA,
        loser_device: idB,
      });
      expect(v.rejected).toEqual([]);
      expect(v.pending).toBe(0);
    }
    expect(vb.conflicts[0]!.id).toBe(va.conflicts[0]!.id);
  });

  it('two tabs on one IndexedDB database: one syncs while the other stands by, edits made in both are all pushed, and the other takes over when the first closes', async () => {
    const { reg, a, b } = await twoDevices();
    await a.until('the first tab to sync', (v) => v.status === 'idle' && v.openPolls.length > 0, null);
    const second = await a.openTab();
    await second.until('the second tab to stand by', (v) => v.status === 'standby', null);
    // Edits in both tabs at once: each tab's client takes counters from the one store.
    const edits = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : second).edit('card', `t${i}`, 'upsert', { front: `tab ${i % 2} edit ${i}` }));
    expect(new Set(await Promise.all(edits)).size).toBe(12);
    await second.until('the first tab to push both tabs’ edits', (v) => v.pending === 0, null);
    const want = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`card/t${i}`, { front: `tab ${i % 2} edit ${i}` }]));
    expect(await reg.exportRows(ANN)).toEqual(want);
    // The tab on standby never pulled: one loop for the database.
    expect(await second.view()).toMatchObject({ status: 'standby', pulls: 0, rejected: [] });
    // The first tab closes: its lock goes with it, and the second runs the loop from then on.
    await a.closeTab();
    await second.until('the second tab to take over', (v) => v.status === 'idle' && v.pulls > 0, null);
    await second.edit('card', 'after', 'upsert', { front: 'made in the second tab alone' });
    await second.until('the second tab to push', (v) => v.pending === 0, null);
    const server = await reg.exportRows(ANN);
    expect(server).toEqual({ ...want, 'card/after': { front: 'made in the second tab alone' } });
    await b.until('the other device to converge on the server’s state', rowsEqual, server);
    expect((await second.view()).rejected).toEqual([]);
  });

  it('a tab closed while offline with queued mutations reopens with them, and pushes every one once back online', async () => {
    const { reg, a, b } = await twoDevices();
    const idA = await a.deviceId();
    await a.edit('card', '1', 'upsert', { front: 'one', back: 'b' });
    await a.edit('card', '2', 'upsert', { front: 'two' });
    await a.until('A to push its queue', (v) => v.pending === 0, null);

    await a.setOffline(true);
    await a.until('A to notice it is offline', (v) => !v.online && v.status === 'paused', null);
    const ids = [
      await a.edit('card', '1', 'patch', { back: 'offline' }),
      await a.edit('card', '2', 'delete'),
      await a.edit('card', '3', 'upsert', { front: 'three' }),
      await a.edit('card', '4', 'upsert', { front: 'four' }),
    ];
    const before = await a.view();
    expect(before.pending).toBe(4);

    // The tab goes away with the queue unsent; a new tab (still offline) opens the app again.
    await a.reopen();
    // The reopened app knows it cannot sync: paused, when the browser tells the page it is offline
    // (navigator.onLine), or retrying with back-off, when it does not (Chromium under Playwright
    // may leave a page opened while offline believing it is online; its requests fail all the same).
    await a.until('the reopened tab to find itself offline', (v) => v.status === 'paused' || v.status === 'offline', null);
    const after = await a.view();
    expect(await a.deviceId()).toBe(idA);
    expect(after).toMatchObject({ pending: 4, signedIn: true, rows: before.rows });

    // Back online, the user edits again: a new mutation ends any back-off at once.
    await a.setOffline(false);
    ids.push(await a.edit('card', '3', 'patch', { back: 'after reopening' }));
    // Mutation ids come from a stored counter: none repeats across the reopening.
    expect(new Set(ids).size).toBe(5);
    await a.until('A to push its queue after reopening', (v) => v.pending === 0, null);
    const server = await reg.exportRows(ANN);
    expect(server).toEqual({
      'card/1': { front: 'one', back: 'offline' },
      'card/3': { front: 'three', back: 'after reopening' },
      'card/4': { front: 'four' },
    });
    await a.until('A to converge on the server’s state', rowsEqual, server);
    await b.until('B to converge on the server’s state', rowsEqual, server);
    for (const d of [a, b]) expect(await d.view()).toMatchObject({ rejected: [], conflicts: [], pending: 0 });
  });
});
