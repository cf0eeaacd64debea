/**
 * Hooks between plugins: every subscriber of an event runs, one after another in dependency order
 * (a plugin's dependencies before it), and emit() rejects once all have run if any of them failed,
 * so one failing subscriber neither hides nor prevents the others' work.
 */
import type { HookEvents, PluginHooks } from './api.js';

type Handler = (payload: never) => Promise<void>;

export class HookBus {
  private readonly subscribers: { plugin: string; event: string; handler: Handler }[] = [];
  /** Plugin id → its position in dependency order; set once the host has ordered the plugins. */
  private order = new Map<string, number>();

  setOrder(ids: readonly string[]): void {
    this.order = new Map(ids.map((id, i) => [id, i]));
  }

  /** Drops a plugin's subscriptions (it failed and is left out). */
  remove(plugin: string): void {
    for (let i = this.subscribers.length - 1; i >= 0; i--) if (this.subscribers[i]!.plugin === plugin) this.subscribers.splice(i, 1);
  }

  /** The hooks object one plugin's ctx carries. */
  forPlugin(plugin: string): PluginHooks {
    return {
      on: (event, handler) => {
        if (typeof handler !== 'function') throw new TypeError(`hooks.on(${String(event)}): the handler must be an async function.`);
        this.subscribers.push({ plugin, event, handler: handler as Handler });
      },
      emit: (event, payload) => this.emit(event, payload),
    };
  }

  async emit<E extends keyof HookEvents>(event: E, payload: HookEvents[E]): Promise<void> {
    const rank = (p: string) => this.order.get(p) ?? Number.MAX_SAFE_INTEGER;
    const handlers = this.subscribers.filter((s) => s.event === event).sort((a, b) => rank(a.plugin) - rank(b.plugin));
    const failures: { plugin: string; error: unknown }[] = [];
    for (const s of handlers) {
      try {
        await (s.handler as (p: HookEvents[E]) => Promise<void>)(payload);
      } catch (error) {
        failures.push({ plugin: s.plugin, error });
      }
    }
    if (failures.length === 1) throw failures[0]!.error;
    if (failures.length > 1) throw new AggregateError(failures.map((f) => f.error), `${failures.length} subscribers of ${event} failed (${failures.map((f) => f.plugin).join(', ')}).`);
  }
}
