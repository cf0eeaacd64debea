/**
 * `iqp server start --workers N`: the real binary as a primary with worker processes on one port
 * and one data directory. Requests go over fresh connections, which the cluster module hands to
 * the workers in turn, so every read below is answered by each worker in its turn.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildTemplatePack, childServerPerTest, createTokenCli, fresh, iqpOnData, newKey, registerKey, tempDir, until, upload } from './helpers.js';

/** The processes whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out.sort();
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The sum of a counter's samples in /metrics whose labels contain `labels`. */
function counter(metrics: string, name: string, labels: string): number {
  return metrics
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('iqp server start --workers', () => {
  const servers = childServerPerTest();

  it('serves one data directory from worker processes that agree at once after every write, and counts every request in /metrics', async () => {
    const dataDir = tempDir('iqp-workers-');
    const server = await servers.start(dataDir, ['--workers', '2']);
    expect(server.info.pid).toBe(server.pid);
    expect(server.info.workers).toHaveLength(2);
    expect(childrenOf(server.pid)).toEqual([...server.info.workers].sort());

    const admin = await createTokenCli(dataDir, 'admin');
    const publisher = await createTokenCli(dataDir, 'publisher');
    const key = newKey();
    await registerKey(server.url, admin, key);
    const versionsSeen = async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const r = await fresh(server.url, '/v1/packs/available');
        expect(r.status).toBe(200);
        seen.add(JSON.stringify((JSON.parse(r.body) as { packs: { package_id: string; version: string }[] }).packs.map((p) => `${p.package_id}@${p.version}`)));
      }
      return [...seen];
    };
    // Each worker caches the empty answer first.
    expect(await versionsSeen()).toEqual(['[]']);

    const work = tempDir('iqp-workers-packs-');
    const pack = await buildTemplatePack(work, key, { authored: { package_id: 'workers.text', version: '1.0.0' } });
    expect((await upload(server.url, publisher, pack.path)).status).toBe(201);
    expect(await versionsSeen(), 'every worker lists the new pack on its next request').toEqual(['["workers.text@1.0.0"]']);

    const dep = await fresh(server.url, '/v1/admin/packs/workers.text/1.0.0/deprecate', { method: 'POST', token: admin, json: { message: 'withdrawn' } });
    expect(dep.status, dep.body).toBe(200);
    expect(await versionsSeen(), 'and drops it on its next request after the deprecation').toEqual(['[]']);

    // 18 requests to /available went to two workers in turn; /metrics (itself asked of either) counts them all.
    for (let i = 0; i < 2; i++) {
      const metrics = await fresh(server.url, '/v1/metrics');
      expect(metrics.status).toBe(200);
      expect(counter(metrics.body, 'iqp_http_requests_total', 'route="/v1/packs/available",status="200"')).toBe(18);
      expect(metrics.body).toMatch(/^iqp_packs_stored 1$/m);
    }
  });

  it('replaces a worker that dies, and keeps answering meanwhile', async () => {
    const dataDir = tempDir('iqp-workers-');
    const server = await servers.start(dataDir, ['--workers', '2']);
    const [victim, survivor] = server.info.workers as [number, number];
    process.kill(victim, 'SIGKILL');
    // Connections the primary hands to a worker in the instant it dies are lost with it, like those
    // it had open; from the moment the primary notices (and logs it), the others take every one.
    expect(await until(() => server.stderr().includes('a server worker exited; starting another')), 'the primary notices').toBe(true);
    expect((await fresh(server.url, '/v1/health')).status, 'the other worker answers').toBe(200);
    expect(await until(() => childrenOf(server.pid).length === 2 && !childrenOf(server.pid).includes(victim), 10_000), 'a new worker replaces it').toBe(true);
    expect(childrenOf(server.pid)).toContain(survivor);
    for (let i = 0; i < 4; i++) expect((await fresh(server.url, '/v1/health')).status).toBe(200);
  });

  it('stops every worker on SIGTERM and frees the data directory', async () => {
    const dataDir = tempDir('iqp-workers-');
    const server = await servers.start(dataDir, ['--workers', '2']);
    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.info.workers.filter(alive), 'no worker outlives its primary').toEqual([]);
    const migrate = await iqpOnData(dataDir, ['server', 'migrate', '--json']);
    expect(migrate.code, migrate.stderr).toBe(0);
  });

  it('takes the workers with it when the primary is killed, and the directory serves again', async () => {
    const dataDir = tempDir('iqp-workers-');
    const server = await servers.start(dataDir, ['--workers', '2']);
    server.child.kill('SIGKILL');
    await server.exited;
    expect(await until(() => server.info.workers.every((pid) => !alive(pid)), 10_000), 'the workers exit once their primary is gone').toBe(true);
    const again = await servers.start(dataDir, ['--workers', '2']);
    expect((await fresh(again.url, '/v1/health')).status).toBe(200);
  });

  it('fails to start as one process would when the workers cannot listen, and leaves the data directory free', async () => {
    const dataDir = tempDir('iqp-workers-');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await iqpOnData(dataDir, ['server', 'start', '--port', String(port), '--workers', '2', '--json']);
      expect(r.code).toBe(4);
      expect(r.json()).toMatchObject({ error: { code: 'IQP_E_IO', details: { errno: 'EADDRINUSE' } } });
      expect(r.json<{ error: { hint: string } }>().error.hint).toContain('--port');
    } finally {
      taken.close();
    }
    const migrate = await iqpOnData(dataDir, ['server', 'migrate', '--json']);
    expect(migrate.code, `the lock is free again: ${migrate.stderr}`).toBe(0);
  });

  it('keeps serving when a message to a worker fails: the cluster module reports it as the worker\'s error event, which must not end the primary', () => {
    const dataDir = tempDir('iqp-workers-');
    const child = spawnSync(process.execPath, [fileURLToPath(new URL('./worker-error-child.mjs', import.meta.url))], { env: { ...process.env, DATA_DIR: dataDir }, encoding: 'utf8', timeout: 60_000 });
    expect(child.status, child.stderr).toBe(0);
    const out = JSON.parse(child.stdout.trim()) as { health: number; logs: Array<{ level: string; msg: string; error?: string }> };
    expect(out.health).toBe(200);
    expect(out.logs).toContainEqual(expect.objectContaining({ level: 'error', msg: 'a message to a server worker failed', error: 'write EPIPE' }));
  }, 90_000);
});
