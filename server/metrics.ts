/** Prometheus metrics, one registry per app so several apps (tests) never share counters. */
import client from 'prom-client';
import { RequestMetrics } from './request-metrics.js';

export class Metrics {
  readonly registry = new client.Registry();
  /** iqp_http_requests_total and iqp_http_request_duration_seconds (request-metrics.ts says why not prom-client's own). */
  readonly requests: RequestMetrics;
  readonly bytesServed: client.Counter;
  readonly uploads: client.Counter<'result'>;
  readonly uploadBytes: client.Counter;

  /**
   * `gather`: where /metrics gets its text when this process is one of several serving a data
   * directory (every worker's counters, summed); default this registry's own.
   */
  constructor(
    countPacks: () => Promise<number>,
    jsonCache: () => { bytes: number; entries: number },
    private readonly gather: (() => Promise<string>) | null = null,
  ) {
    const registers = [this.registry];
    this.requests = new RequestMetrics(
      { requests: 'iqp_http_requests_total', latency: 'iqp_http_request_duration_seconds' },
      { requests: 'HTTP requests by route and status.', latency: 'Time to the end of the response, by route.' },
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    );
    this.registry.registerMetric(this.requests.counter());
    this.registry.registerMetric(this.requests.histogram());
    this.bytesServed = new client.Counter({ name: 'iqp_download_bytes_total', help: 'Pack bytes sent to clients.', registers });
    this.uploads = new client.Counter({ name: 'iqp_uploads_total', help: 'Pack uploads by result (created, identical, rejected).', labelNames: ['result'], registers });
    this.uploadBytes = new client.Counter({ name: 'iqp_upload_bytes_total', help: 'Bytes received in pack uploads.', registers });
    new client.Gauge({
      name: 'iqp_packs_stored',
      help: 'Pack versions stored.',
      registers,
      // Every process reads the same database: one count, not one per process.
      aggregator: 'first',
      async collect() {
        this.set(await countPacks());
      },
    });
    new client.Gauge({
      name: 'iqp_json_cache_bytes',
      help: 'Bytes held by the cache of JSON answers (capped by json_cache_bytes).',
      registers,
      collect() {
        this.set(jsonCache().bytes);
      },
    });
    new client.Gauge({
      name: 'iqp_json_cache_entries',
      help: 'Answers held by the cache of JSON answers.',
      registers,
      collect() {
        this.set(jsonCache().entries);
      },
    });
    client.collectDefaultMetrics({ register: this.registry, prefix: 'iqp_process_' });
  }

  /** The text /metrics answers. */
  render(): Promise<string> {
    return this.gather ? this.gather() : this.registry.metrics();
  }
}
