/**
 * The release-lifecycle smoke test CI runs (`npm run smoke`): a fresh registry on a temp dir and a
 * random port, driven only through the real `iqp` binary, from keys to a deprecated release. Any
 * deviation from the expected outcome exits non-zero with the step that failed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const BIN = join(ROOT, 'bin', 'iqp.js');
const work = mkdtempSync(join(tmpdir(), 'iqp-smoke-'));
const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', NO_COLOR: '1', IQP_TRUST_STATE: join(work, 'trust.json') };
for (const k of Object.keys(env)) if (k.startsWith('IQP_') && k !== 'IQP_TRUST_STATE') delete env[k];
let server: ChildProcess | null = null;
let step = 0;

class SmokeFailure extends Error {}

function say(message: string): void {
  step += 1;
  process.stdout.write(`✓ ${String(step).padStart(2)}. ${message}\n`);
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function iqp(args: string[], expectCode = 0): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, env, encoding: 'utf8', input: '' });
  const result = { code: r.status, stdout: r.stdout, stderr: r.stderr };
  if (r.status !== expectCode) {
    throw new SmokeFailure(`iqp ${args.join(' ')} exited ${r.status}, expected ${expectCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  return result;
}

function json<T = any>(args: string[], expectCode = 0): T {
  const r = iqp([...args, '--json'], expectCode);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new SmokeFailure(`iqp ${args.join(' ')} --json did not print one JSON document:\n${r.stdout}`);
  }
}

function expect(condition: unknown, message: string): void {
  if (!condition) throw new SmokeFailure(message);
}

async function startServer(): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'server', 'start', '--data', join(work, 'data'), '--port', '0', '--json'], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
  server = child;
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new SmokeFailure(`the server did not start within 20 s\n${err}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        const doc = JSON.parse(out) as { url: string };
        clearTimeout(timer);
        resolvePromise(doc.url);
      } catch {
        // not the whole document yet
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new SmokeFailure(`the server exited with ${code} before listening\n${err}`));
    });
  });
}

async function stopServer(): Promise<void> {
  const child = server;
  server = null;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  child.kill('SIGTERM');
  const code = await exited;
  expect(code === 0, `the server stopped with exit code ${code} on SIGTERM, expected 0`);
}

async function main(): Promise<void> {
  iqp(['keygen', '--out', 'publisher', '--no-passphrase']);
  iqp(['keygen', '--out', 'release', '--no-passphrase']);
  // The registry is made first, as an operator does before the first token (token commands refuse a directory that holds none).
  iqp(['server', 'migrate', '--data', 'data']);
  const token = json<{ token: string }>(['token', 'create', '--role', 'admin', '--name', 'smoke', '--data', 'data']).token;
  env['IQP_TOKEN'] = token;
  say('created a registry, a publisher key, a release key and an admin token');

  env['IQP_REGISTRY'] = await startServer();
  say(`started a fresh registry at ${env['IQP_REGISTRY']}`);
  iqp(['keys', 'add', 'publisher.pub', '--name', 'smoke publisher']);
  iqp(['keys', 'add', 'release.pub', '--purpose', 'release', '--name', 'smoke release manager']);
  say('registered the publisher key and the release key');

  const packs: Record<string, string> = {};
  for (const template of ['translation', 'recitation', 'dataset', 'deck']) {
    const id = `smoke.${template}`;
    iqp(['init', template, '--template', template, '--id', id, '--lang', 'en', '--name', `Smoke ${template}`, '--yes']);
    const built = json<{ path: string; package_id: string; version: string }>(['build', template, '--key', 'publisher.key']);
    packs[template] = built.path;
  }
  say(`built ${Object.keys(packs).length} packs from the templates`);
  const published = json<{ packs: { status: string }[] }>(['publish', ...Object.values(packs)]);
  expect(published.packs.every((p) => p.status === 'published'), `publish: ${JSON.stringify(published)}`);
  say('published them');

  const r1 = json<{ id: number }>(['release', 'create', '2026.11', '--channel', 'stable', '--min-app-version', '1.0.0', '--role', 'translation,recitation,deck']);
  iqp(['release', 'attach', String(r1.id), 'translation', 'smoke.translation@1.0.0']);
  iqp(['release', 'attach', String(r1.id), 'recitation', 'smoke.recitation@1.0.0']);
  const failing = json<{ ok: boolean; failures: { code: string; role?: string }[] }>(['release', 'validate', String(r1.id)], 1);
  expect(!failing.ok && failing.failures.some((f) => f.code === 'role_missing' && f.role === 'deck'), `validation should fail for the missing deck: ${JSON.stringify(failing)}`);
  say(`release ${r1.id}: validation fails while the deck role is empty (${failing.failures.map((f) => f.code).join(', ')})`);
  iqp(['release', 'publish', String(r1.id), '--key', 'release.key'], 1);
  say('publishing it is refused while validation fails');
  iqp(['release', 'attach', String(r1.id), 'deck', 'smoke.deck@1.0.0']);
  expect(json<{ ok: boolean }>(['release', 'validate', String(r1.id)]).ok, 'validation should pass once every role is filled');
  say('validation passes once every role is filled');
  const pub1 = json<{ status: string; sequence: number }>(['release', 'publish', String(r1.id), '--key', 'release.key']);
  expect(pub1.status === 'published' && pub1.sequence === 1, `publish: ${JSON.stringify(pub1)}`);
  say(`published release ${r1.id} with a manifest signed here (sequence ${pub1.sequence})`);

  const r2 = json<{ id: number }>(['release', 'create', '2027.01', '--channel', 'stable', '--min-app-version', '2.0.0', '--role', 'translation,dataset']);
  iqp(['release', 'attach', String(r2.id), 'translation', 'smoke.translation@1.0.0']);
  iqp(['release', 'attach', String(r2.id), 'dataset', 'smoke.dataset@1.0.0']);
  iqp(['release', 'publish', String(r2.id), '--key', 'release.key']);
  say(`published release ${r2.id} for apps ≥ 2.0.0`);

  const forOld = json<{ release_id: number }>(['release', 'latest', '--app-version', '1.5.0']);
  const forNew = json<{ release_id: number }>(['release', 'latest', '--app-version', '2.1.0']);
  expect(forOld.release_id === r1.id && forNew.release_id === r2.id, `latest: app 1.5.0 → ${forOld.release_id}, app 2.1.0 → ${forNew.release_id}`);
  iqp(['release', 'latest', '--app-version', '0.9.0'], 3);
  say(`latest: app 1.5.0 gets release ${r1.id}, app 2.1.0 gets release ${r2.id}, app 0.9.0 gets none`);

  const pulled = json<{ release_id: number; packs: { path: string }[] }>(['pull', '--release', 'latest', '--app-version', '2.1.0', '--release-key', 'release.pub', '--out', 'pulled']);
  expect(pulled.release_id === r2.id && pulled.packs.length === 2, `pull: ${JSON.stringify(pulled)}`);
  for (const p of pulled.packs) iqp(['verify', p.path, '--pubkey', 'publisher.pub']);
  say(`pulled release ${r2.id} (signature, expiry, sequence checked) and verified its ${pulled.packs.length} packs`);

  iqp(['release', 'deprecate', String(r2.id), '--message', 'smoke test: withdrawn']);
  const after = json<{ release_id: number }>(['release', 'latest', '--app-version', '2.1.0']);
  expect(after.release_id === r1.id, `after deprecating ${r2.id}, latest for app 2.1.0 should be ${r1.id}, got ${after.release_id}`);
  say(`deprecated release ${r2.id}: latest for app 2.1.0 is now release ${r1.id}`);
  const rollback = iqp(['pull', '--release', 'latest', '--app-version', '2.1.0', '--release-key', 'release.pub', '--out', 'pulled', '--json'], 1);
  expect(JSON.parse(rollback.stdout).error.code === 'IQP_E_RELEASE_ROLLBACK', `pulling an older sequence should be refused: ${rollback.stdout}`);
  iqp(['release', 'resign', String(r1.id), '--key', 'release.key']);
  const again = json<{ release_id: number; sequence: number }>(['pull', '--release', 'latest', '--app-version', '2.1.0', '--release-key', 'release.pub', '--out', 'pulled']);
  expect(again.release_id === r1.id && again.sequence === 3, `after resign: ${JSON.stringify(again)}`);
  say(`a client that saw sequence 2 refuses the older release ${r1.id} until it is re-signed (now sequence ${again.sequence})`);

  const listed = json<{ releases: { id: number; status: string }[] }>(['release', 'list', '--all']);
  expect(listed.releases.map((r) => `${r.id}:${r.status}`).join(',') === `${r2.id}:deprecated,${r1.id}:published`, `list: ${JSON.stringify(listed.releases)}`);
  await stopServer();
  say('stopped the registry cleanly');
}

main()
  .then(() => {
    process.stdout.write(`smoke test passed (${step} steps)\n`);
    rmSync(work, { recursive: true, force: true });
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`✗ smoke test failed after step ${step}: ${err instanceof Error ? err.message : String(err)}\n(work dir kept: ${work})\n`);
    if (server && server.exitCode === null) server.kill('SIGKILL');
    process.exitCode = 1;
  });

