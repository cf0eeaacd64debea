/** RequestMetrics answers /metrics exactly as prom-client's own Counter and Histogram would, alone and summed across workers. */
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RequestMetrics } from './request-metrics.js';

const BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const NAMES = { requests: 'iqp_http_requests_total', latency: 'iqp_http_request_duration_seconds' };
const HELP = { requests: 'HTTP requests by route and status.', latency: 'Time to the end of the response, by route.' };

type Obs = [method: string, route: string, status: number, seconds: number];

function ours(obs: readonly Obs[]): client.Registry {
  const registry = new client.Registry();
  const m = new RequestMetrics(NAMES, HELP, BOUNDS);
  registry.registerMetric(m.counter());
  registry.registerMetric(m.histogram());
  for (const [method, route, status, s] of obs) m.record(method, route, status, s);
  return registry;
}

function theirs(obs: readonly Obs[]): client.Registry {
  const registry = new client.Registry();
  const registers = [registry];
  const c = new client.Counter({ name: NAMES.requests, help: HELP.requests, labelNames: ['method', 'route', 'status'], registers });
  const h = new client.Histogram({ name: NAMES.latency, help: HELP.latency, labelNames: ['method', 'route'], buckets: BOUNDS, registers });
  for (const [method, route, status, s] of obs) {
    c.inc({ method, route, status: String(status) });
    h.observe({ method, route }, s);
  }
  return registry;
}

// Bounds themselves, just past them, zero, and past the last bound (+Inf only).
const OBS: Obs[] = [
  ['GET', '/v1/packs/available', 200, 0.0005],
  ['GET', '/v1/packs/available', 200, 0.00051],
  ['GET', '/v1/packs/available', 304, 0],
  ['GET', '/v1/packs/:id/download', 206, 0.02],
  ['HEAD', '/v1/packs/:id/download', 200, 61],
  ['POST', '/v1/packs/:id', 405, 2.5],
  ['GET', 'route with "quotes" and \\ \n', 404, 0.3],
];

describe('RequestMetrics', () => {
  it('renders the same text as prom-client', async () => {
    expect(await ours(OBS).metrics()).toBe(await theirs(OBS).metrics());
    expect(await ours([]).metrics()).toBe(await theirs([]).metrics());
  });

  it('sums across workers as prom-client’s AggregatorRegistry does', async () => {
    const [a, b] = [OBS.slice(0, 4), OBS.slice(2)];
    const mine = client.AggregatorRegistry.aggregate([await ours(a).getMetricsAsJSON(), await ours(b).getMetricsAsJSON()]);
    const ref = client.AggregatorRegistry.aggregate([await theirs(a).getMetricsAsJSON(), await theirs(b).getMetricsAsJSON()]);
    expect(await mine.metrics()).toBe(await ref.metrics());
  });

  it('reset() empties both series', async () => {
    const registry = ours(OBS);
    registry.resetMetrics();
    expect(await registry.metrics()).toBe(await theirs([]).metrics());
  });
});
