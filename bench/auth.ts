/**
 * The auth plugin under load, each figure beside its baseline measured in the same run:
 *
 *   - sign-ins per second and their p95 with 4 in flight, against raw argon2id verifications per
 *     second of the same parameters with 4 in flight (goal: at least 0.8 of the raw rate, p95 at
 *     most 250 ms);
 *   - refreshes per second (goal: at least 500);
 *   - access-token checks per second through a protected route (GET /v1/auth/me), against raw
 *     jose verifications per second of the same token (goal: at least 0.8).
 *
 * A real registry (startServer with the built-in auth plugin) on 127.0.0.1, driven by keep-alive
 * HTTP from the same process: on a small machine the client's share of the CPU is part of what is
 * measured, as it is for the raw baselines, which run in the same process too.
 *
 *   node dist/bench/auth.js [--seconds N]      (or npm run bench -- --only auth)
 */
// First: the server's threadpool size, as bin/iqp.js sets it.
import '../src/threadpool.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { verify as argon2Verify, hash as argon2Hash } from '@node-rs/argon2';
import { importJWK, jwtVerify } from 'jose';
import { Agent, request } from 'undici';
import { HASH_OPTIONS } from '../plugins/auth/crypto/passwords.js';
import { serverConfig } from '../server/config.js';
import { AUTH_ADMIN_V1 } from '../server/plugins/api.js';
import { startServer } from '../server/start.js';
import type { BenchContext, BenchResult, Verdict } from './lib/context.js';
import { int, ratio, table } from './lib/format.js';

const PASSWORD = 'bench-passphrase-long-enough';
const ROOMY = { per_ip: { points: 10_000_000, duration_s: 60 }, per_email_ip: { points: 10_000_000, duration_s: 60 }, mail_per_email: { points: 10, duration_s: 60 } };

interface Rate {
  readonly perSecond: number;
  readonly p95Ms: number;
  readonly count: number;
}

/** Runs `inFlight` loops of `op` for `seconds`; the rate and the 95th percentile of one op's time. */
async function measure(seconds: number, inFlight: number, op: (loop: number) => Promise<void>): Promise<Rate> {
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, loop) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await op(loop);
        times.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  times.sort((a, b) => a - b);
  return { perSecond: times.length / elapsed, p95Ms: times[Math.floor(times.length * 0.95)] ?? 0, count: times.length };
}

export async function runAuthBench(seconds: number, log: (m: string) => void) {
  const dataDir = mkdtempSync(join(tmpdir(), 'iqp-bench-auth-'));
  writeFileSync(join(dataDir, 'server.json'), JSON.stringify({ plugins: { auth: { enabled: true, source: 'builtin', required: true, config: { rate_limits: ROOMY } } } }));
  const running = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => {});
  const agent = new Agent({ connections: 64, pipelining: 1 });
  const json = async (method: 'GET' | 'POST', path: string, body?: unknown, token?: string) => {
    const r = await request(`${running.url}${path}`, {
      method,
      dispatcher: agent,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.body.text();
    if (r.statusCode >= 300) throw new Error(`${method} ${path}: ${r.statusCode} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  try {
    const admin = running.plugins!.service(AUTH_ADMIN_V1)!;
    await admin.createUser({ email: 'bench@example.org', password: PASSWORD }, 'bench');
    const stored = await argon2Hash(PASSWORD, HASH_OPTIONS);

    log('auth: raw argon2id verifications, 4 in flight…');
    const rawHash = await measure(seconds, 4, async () => void (await argon2Verify(stored, PASSWORD)));
    log('auth: sign-ins, 4 in flight…');
    const logins = await measure(seconds, 4, async () => void (await json('POST', '/v1/auth/login', { email: 'bench@example.org', password: PASSWORD })));

    log('auth: refreshes, 8 chains in flight…');
    const chains: string[] = [];
    for (let i = 0; i < 8; i++) chains.push((await json('POST', '/v1/auth/login', { email: 'bench@example.org', password: PASSWORD, device_id: `bench-device-${i}` })).refresh_token);
    const refreshes = await measure(seconds, 8, async (loop) => {
      chains[loop] = (await json('POST', '/v1/auth/refresh', { refresh_token: chains[loop] })).refresh_token;
    });

    const { access_token } = await json('POST', '/v1/auth/login', { email: 'bench@example.org', password: PASSWORD });
    const jwks = await json('GET', '/v1/auth/jwks.json');
    const kid = JSON.parse(Buffer.from(access_token.split('.')[0], 'base64url').toString()).kid;
    const key = await importJWK(jwks.keys.find((k: { kid: string }) => k.kid === kid), 'EdDSA');
    const options = { algorithms: ['EdDSA'], issuer: 'iqp', audience: 'iqp-apps', typ: 'at+jwt' };
    log('auth: raw jose verifications, 16 in flight…');
    const rawJose = await measure(seconds, 16, async () => void (await jwtVerify(access_token, key, options)));
    log('auth: GET /v1/auth/me with an access token, 16 in flight…');
    const checks = await measure(seconds, 16, async () => void (await json('GET', '/v1/auth/me', undefined, access_token)));
    // The same server's ceiling for a cheap route without a token: what HTTP alone costs here.
    log('auth: GET /v1/auth/jwks.json without a token, 16 in flight…');
    const plain = await measure(seconds, 16, async () => void (await json('GET', '/v1/auth/jwks.json')));
    return { rawHash, logins, refreshes, rawJose, checks, plain };
  } finally {
    await agent.close();
    await running.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function report(r: Awaited<ReturnType<typeof runAuthBench>>): { markdown: string; verdicts: Verdict[] } {
  const loginRatio = r.logins.perSecond / r.rawHash.perSecond;
  const checkRatio = r.checks.perSecond / r.rawJose.perSecond;
  const verdicts: Verdict[] = [
    { target: 'sign-ins/s vs raw argon2id (4 in flight)', measured: ratio(loginRatio), goal: '≥ 0.80', pass: loginRatio >= 0.8 },
    { target: 'sign-in p95 (4 in flight)', measured: `${int(r.logins.p95Ms)} ms`, goal: '≤ 250 ms', pass: r.logins.p95Ms <= 250 },
    { target: 'refreshes/s', measured: int(r.refreshes.perSecond), goal: '≥ 500', pass: r.refreshes.perSecond >= 500 },
    { target: 'token checks via GET /v1/auth/me vs raw jose', measured: ratio(checkRatio), goal: '≥ 0.80', pass: checkRatio >= 0.8 },
  ];
  const row = (what: string, x: Rate) => [what, int(x.perSecond), `${x.p95Ms.toFixed(1)} ms`, int(x.count)];
  const markdown = [
    '### Auth plugin',
    '',
    table(
      ['measured', 'per second', 'p95', 'operations'],
      [
        row('raw argon2id verify, m=19456 t=2 p=1, 4 in flight', r.rawHash),
        row('POST /v1/auth/login, 4 in flight', r.logins),
        row('POST /v1/auth/refresh, 8 chains in flight', r.refreshes),
        row('raw jose jwtVerify (EdDSA), 16 in flight', r.rawJose),
        row('GET /v1/auth/me with an access token, 16 in flight', r.checks),
        row('GET /v1/auth/jwks.json, no token (HTTP ceiling), 16 in flight', r.plain),
      ],
    ),
    '',
    table(
      ['target', 'measured', 'goal', 'result'],
      verdicts.map((v) => [v.target, v.measured, v.goal, v.pass ? 'PASS' : 'FAIL']),
    ),
  ].join('\n');
  return { markdown, verdicts };
}

export async function benchAuth(ctx: BenchContext): Promise<BenchResult> {
  const r = await runAuthBench(ctx.options.quick ? 3 : 8, (m) => ctx.log(m));
  return { name: 'auth', ...report(r), data: r };
}

// Run directly: node dist/bench/auth.js [--seconds N]
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' } } });
  const r = await runAuthBench(Number(values.seconds), (m) => process.stderr.write(`[bench] ${m}\n`));
  const { markdown, verdicts } = report(r);
  process.stdout.write(`${markdown}\n`);
  process.exitCode = verdicts.every((v) => v.pass) ? 0 : 1;
}
