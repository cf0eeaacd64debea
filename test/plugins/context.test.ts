/** The rules ctx enforces per phase, and what it adds (audit prefix, data folder). */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serviceRef } from '../../server/plugins/api.js';
import { createContext, type PluginState, type SharedServices } from '../../server/plugins/context.js';
import { HookBus } from '../../server/plugins/hooks.js';
import type { LoadedManifest } from '../../server/plugins/manifest.js';
import type { NewAuditEntry } from '../../server/stores/types.js';
import { tempDir } from '../e2e/helpers.js';

function setup() {
  const manifest = { id: 'notes', version: '1.0.0', host: '^1.0.0', entry: './index.js', dir: '/x', entryPath: '/x/index.js', provides: ['notes.v1'] } satisfies LoadedManifest;
  const state: PluginState = { manifest, phase: 'register', routes: [], provided: new Map(), config: null };
  const audits: NewAuditEntry[] = [];
  const sent: { plugin: string; message: string }[] = [];
  const handlers: Record<string, (message: string) => void> = {};
  const dataDir = tempDir('iqp-plugin-ctx-');
  const shared: SharedServices = {
    mode: 'server',
    dataDir,
    db: { dialect: 'sqlite' } as never,
    log: () => undefined,
    audit: async (e) => void audits.push(e),
    clock: { nowMs: () => 0, now: () => '2026-01-01T00:00:00.000Z' },
    hooks: new HookBus(),
    rateLimit: () => ({}) as never,
    counter: () => ({ inc() {} }),
    lookup: () => 'impl',
    peers: { send: (plugin, message) => void sent.push({ plugin, message }), on: (plugin, handler) => void (handlers[plugin] = handler) },
  };
  return { state, ctx: createContext(state, shared), audits, dataDir, sent, handlers };
}

const spec = { id: 'notes.list', method: 'GET', path: '/items', summary: 'List', auth: 'none', responses: {} } as const;

describe('ctx', () => {
  it('declares during register only; reads config and services from start on', () => {
    const { state, ctx } = setup();
    expect(() => ctx.config).toThrow(/ctx\.config is read before start/);
    expect(() => ctx.service(serviceRef('auth.v1'))).toThrow(/from start\(\) on/);
    expect(() => ctx.provide(serviceRef('auth.v1'), {})).toThrow(/does not list/);
    ctx.provide(serviceRef('notes.v1'), { ok: true });
    ctx.routes.route(spec, async () => ctx.reply(204));
    expect(() => ctx.routes.route({ ...spec, path: 'items' }, async () => ctx.reply(204))).toThrow(/must start with \//);
    state.phase = 'starting';
    state.config = Object.freeze({ a: 1 });
    expect(ctx.config).toEqual({ a: 1 });
    expect(ctx.service(serviceRef('auth.v1'))).toBe('impl');
    expect(() => ctx.routes.route(spec, async () => ctx.reply(204))).toThrow(/during register/);
    expect(state.routes).toHaveLength(1);
  });

  it('prefixes audit actions with the plugin id and makes its data folder 0700 when asked', async () => {
    const { ctx, audits, dataDir } = setup();
    await ctx.audit({ action: 'note.created', actor: 'user:u1', target: 'note:1', details: { size: 3 } });
    expect(audits).toEqual([{ at: '2026-01-01T00:00:00.000Z', actor: 'user:u1', action: 'notes.note.created', target: 'note:1', details: { size: 3 } }]);
    expect(ctx.dataDir).toBe(join(dataDir, 'plugins', 'notes'));
    expect(statSync(ctx.dataDir).mode & 0o777).toBe(0o700);
  });

  it('sends peers\' messages under the plugin id, takes handlers for them, and refuses what is not a short string', () => {
    const { ctx, sent, handlers } = setup();
    ctx.peers.broadcast('user-1');
    expect(sent).toEqual([{ plugin: 'notes', message: 'user-1' }]);
    const got: string[] = [];
    ctx.peers.onMessage((m) => got.push(m));
    handlers['notes']!('user-2');
    expect(got).toEqual(['user-2']);
    expect(() => ctx.peers.broadcast('x'.repeat(4097))).toThrow(/at most 4096 bytes/);
    expect(() => ctx.peers.broadcast({ payload: 1 } as never)).toThrow(/string/);
    expect(sent).toHaveLength(1);
  });
});
