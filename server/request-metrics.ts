/**
 * The two per-request series (iqp_http_requests_total and iqp_http_request_duration_seconds), kept
 * in plain maps and handed to prom-client's registry as metrics of its own shape.
 *
 * prom-client's Counter.inc and Histogram.observe hash and validate their label object on every
 * call; at tens of thousands of cached answers a second that was about a tenth of a worker's time.
 * Here a request costs one string key and a map lookup; the series are built only when /metrics
 * is scraped, in the text (and the JSON the primary sums across workers) prom-client would give.
 */
import type client from 'prom-client';

interface Series {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

/** What prom-client's Registry asks of a metric: get() gives the values its text and its aggregator read. */
interface Exported {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: 'counter' | 'histogram'; aggregator: 'sum'; values: Series[] }>;
  reset(): void;
}

function exported(name: string, help: string, type: 'counter' | 'histogram', values: () => Series[], reset: () => void): client.Metric {
  const metric: Exported = { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }), reset };
  // The registry's types name its own classes; it reads only the members above.
  return metric as unknown as client.Metric;
}

interface Count {
  readonly labels: { method: string; route: string; status: string };
  value: number;
}

interface Timing {
  readonly labels: { method: string; route: string };
  /** Observations per bucket (not cumulative), the last one past every bound (+Inf). */
  readonly buckets: number[];
  sum: number;
  count: number;
}

export class RequestMetrics {
  readonly #counts = new Map<string, Count>();
  readonly #timings = new Map<string, Timing>();

  constructor(
    private readonly names: { readonly requests: string; readonly latency: string },
    private readonly help: { readonly requests: string; readonly latency: string },
    /** Upper bounds of the latency buckets, ascending. */
    private readonly bounds: readonly number[],
  ) {}

  /** One answered request. */
  record(method: string, route: string, status: number, seconds: number): void {
    const timingKey = `${method}\u0000${route}`;
    const countKey = `${timingKey}\u0000${status}`;
    const c = this.#counts.get(countKey);
    if (c) c.value++;
    else this.#counts.set(countKey, { labels: { method, route, status: String(status) }, value: 1 });
    let t = this.#timings.get(timingKey);
    if (!t) {
      t = { labels: { method, route }, buckets: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
      this.#timings.set(timingKey, t);
    }
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++;
    t.buckets[i]!++;
    t.sum += seconds;
    t.count++;
  }

  /** The counter, for Registry.registerMetric. */
  counter(): client.Metric {
    const counts = this.#counts;
    return exported(this.names.requests, this.help.requests, 'counter', () => [...counts.values()].map((c) => ({ labels: { ...c.labels }, value: c.value })), () => counts.clear());
  }

  /** The histogram, for Registry.registerMetric: cumulative buckets, +Inf, _sum and _count per series. */
  histogram(): client.Metric {
    const timings = this.#timings;
    const name = this.names.latency;
    const values = (): Series[] => {
      const out: Series[] = [];
      for (const t of timings.values()) {
        let acc = 0;
        this.bounds.forEach((le, i) => {
          acc += t.buckets[i]!;
          out.push({ labels: { le, ...t.labels }, value: acc, metricName: `${name}_bucket` });
        });
        out.push({ labels: { le: '+Inf', ...t.labels }, value: t.count, metricName: `${name}_bucket` });
        out.push({ labels: { ...t.labels }, value: t.sum, metricName: `${name}_sum` });
        out.push({ labels: { ...t.labels }, value: t.count, metricName: `${name}_count` });
      }
      return out;
    };
    return exported(name, this.help.latency, 'histogram', values, () => timings.clear());
  }
}
