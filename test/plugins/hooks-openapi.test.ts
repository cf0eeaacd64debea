/** Hooks run every subscriber in dependency order and fail after all ran; plugin routes are listed for the OpenAPI document. */
import { describe, expect, it } from 'vitest';
import { HookBus } from '../../server/plugins/hooks.js';
import { pluginRouteGroups } from '../../server/plugins/openapi.js';
import { claimRoutes, coreShapes } from '../../server/plugins/routes.js';
import { fixturePlugin } from './helpers.js';

describe('hooks', () => {
  it('every subscriber runs in dependency order, and emit rejects after all ran if any failed', async () => {
    const bus = new HookBus();
    const ran: string[] = [];
    bus.forPlugin('sync').on('user.deleted', async ({ userId }) => {
      ran.push(`sync ${userId}`);
      throw new Error('sync could not delete');
    });
    bus.forPlugin('auth').on('user.deleted', async ({ userId }) => {
      ran.push(`auth ${userId}`);
    });
    bus.forPlugin('notes').on('user.deleted', async ({ userId }) => {
      ran.push(`notes ${userId}`);
    });
    bus.setOrder(['auth', 'sync', 'notes']);
    await expect(bus.forPlugin('auth').emit('user.deleted', { userId: 'u1' })).rejects.toThrow('sync could not delete');
    expect(ran).toEqual(['auth u1', 'sync u1', 'notes u1']);
  });

  it('a plugin left out no longer receives events', async () => {
    const bus = new HookBus();
    const ran: string[] = [];
    bus.forPlugin('gone').on('user.deleted', async () => void ran.push('gone'));
    bus.remove('gone');
    await bus.emit('user.deleted', { userId: 'u1' });
    expect(ran).toEqual([]);
  });
});

describe('pluginRouteGroups', () => {
  it("records each plugin's declared routes under /v1/<id> without starting it", async () => {
    const groups = await pluginRouteGroups([fixturePlugin('hello'), fixturePlugin('fan')]);
    expect(groups.map((g) => [g.prefix, g.routes.map((r) => `${r.method} ${r.path}`)])).toEqual([
      ['/v1/hello', ['POST /greet', 'GET /secret-length', 'GET /boom', 'GET /limited']],
      ['/v1/fan', ['GET /cheer']],
    ]);
  });
});

describe('route claims', () => {
  const r = (method: 'GET' | 'POST', path: string) => ({ spec: { id: `x.${path}`, method, path, summary: '', auth: 'none' as const, responses: {} }, handler: async () => ({ status: 204 }) });

  it('refuse a route the core or an earlier claim could answer for the same request', () => {
    const taken = coreShapes([{ route: '/v1/packs/:id', allow: ['GET', 'HEAD'], pattern: /x/ }]);
    expect(claimRoutes('packs', [r('GET', '/{name}')], [...taken])).toEqual({ route: 'GET /v1/packs/{}', other: 'GET /v1/packs/{}' });
    expect(claimRoutes('packs', [r('GET', '/available')], [...taken])).toMatchObject({ route: 'GET /v1/packs/available' });
    expect(claimRoutes('packs', [r('POST', '/available')], [...taken])).toBeNull();
    expect(claimRoutes('notes', [r('GET', '/items/{id}'), r('GET', '/items/latest')], [...taken])).toEqual({ route: 'GET /v1/notes/items/latest', other: 'GET /v1/notes/items/{}' });
    expect(claimRoutes('notes', [r('GET', '/items'), r('GET', '/items/{id}')], [...taken])).toBeNull();
  });
});
