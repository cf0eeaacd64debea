/** ctx.counter(): plugins' Prometheus counters in the registry's metrics. */
import { Counter, type Registry } from 'prom-client';
import type { PluginCounter, PluginCounterOptions } from './api.js';

/** `iqp_<plugin>_<name>_total` in the registry's metrics; made once per name (a plugin restarted in one process reuses it). */
export function pluginCounter(registry: Registry | undefined, plugin: string, options: PluginCounterOptions): PluginCounter {
  if (!registry) return { inc() {} };
  const name = `iqp_${plugin.replace(/-/g, '_')}_${options.name}_total`;
  const existing = registry.getSingleMetric(name) as Counter<string> | undefined;
  const counter = existing ?? new Counter({ name, help: options.help, labelNames: [...(options.labels ?? [])], registers: [registry] });
  return { inc: (labels, value) => (labels ? counter.inc(labels, value ?? 1) : counter.inc(value ?? 1)) };
}
