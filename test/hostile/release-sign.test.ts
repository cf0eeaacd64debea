/**
 * `iqp release resign` against a registry that asks the release manager to sign something other
 * than the release named: the CLI signs only a well-formed manifest of that release, with a
 * sequence after the channel's signed latest, and sends nothing when the answer is wrong. The
 * registry here is a plain HTTP server; the CLI and the key are real.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { iqp, tempDir } from '../e2e/helpers.js';
import { parseSecretKey } from '../../src/pack/minisign.js';
import { signReleaseManifest } from '../../src/pack/release-manifest.js';
import { fakeRegistry, sendJson } from './pull-registry.js';

const SHA = 'a'.repeat(64);

function body(over: Record<string, unknown> = {}) {
  return {
    kind: 'iqp-release',
    format: 2,
    registry_id: '0123456789abcdef0123456789abcdef',
    release_id: 7,
    name: 'spring',
    channel: 'stable',
    notes: '',
    min_app_version: '1.0.0',
    artifacts: [{ role: 'translation', package_id: 'quran.en', version: '1.0.0', size_bytes: 10, sha256: SHA, signer_key_id: 'ABCDEF0123456789', download_path: '/v1/packs/quran.en/1.0.0/download' }],
    ...over,
  };
}

async function keyIn(work: string): Promise<void> {
  const made = await iqp(['keygen', '--out', 'release', '--no-passphrase'], { cwd: work, env: { HOME: work } });
  expect(made.code, made.stderr).toBe(0);
}

/** Runs `iqp release resign 7` against a registry answering manifest-body with `answer`; returns the run and what the registry was sent. */
async function resignAgainst(answer: unknown, latest?: (req: IncomingMessage, work: string) => unknown) {
  const work = tempDir('iqp-release-sign-');
  await keyIn(work);
  const posted: string[] = [];
  const registry = await fakeRegistry((req, res) => {
    const url = req.url ?? '';
    if (req.method === 'GET' && url === '/v1/admin/releases/7/manifest-body') return sendJson(res, answer);
    if (req.method === 'GET' && url.startsWith('/v1/releases/latest')) {
      const served = latest?.(req, work);
      return served ? sendJson(res, served) : sendJson(res, { error: { code: 'IQP_E_NOT_FOUND', message: 'none' } }, 404);
    }
    if (req.method === 'POST') {
      posted.push(url);
      return sendJson(res, { error: { code: 'IQP_E_INTERNAL', message: 'not in this test' } }, 500);
    }
    sendJson(res, { error: { code: 'IQP_E_NOT_FOUND', message: url } }, 404);
  });
  const r = await iqp(['release', 'resign', '7', '--key', join(work, 'release.key'), '--registry', registry.url, '--token', 'iqp_test_token', '--json'], { cwd: work, env: { HOME: work } });
  return { r, posted };
}

describe('iqp release resign against a hostile registry', () => {
  it('refuses to sign another release’s manifest, a malformed one, or a sequence that could never be followed, and sends nothing', async () => {
    const cases: Array<[string, unknown]> = [
      ['another release', { body: body({ release_id: 8 }), next_sequence: 3, status: 'published' }],
      ['a sequence at the top of the range', { body: body(), next_sequence: Number.MAX_SAFE_INTEGER, status: 'published' }],
      ['a sequence of 0', { body: body(), next_sequence: 0, status: 'published' }],
      ['a malformed artifact', { body: body({ artifacts: [{ role: 'translation', package_id: 'quran.en', version: 'one', size_bytes: 10, sha256: SHA, signer_key_id: 'K', download_path: '/x' }] }), next_sequence: 3, status: 'published' }],
      ['no artifacts list', { body: body({ artifacts: 'all of them' }), next_sequence: 3, status: 'published' }],
    ];
    for (const [what, answer] of cases) {
      const { r, posted } = await resignAgainst(answer);
      expect(r.json().error?.code, `${what}: ${r.stdout}${r.stderr}`).toBe('IQP_E_REGISTRY');
      expect(r.code, what).toBe(3);
      expect(posted, what).toEqual([]);
    }
  });

  it('refuses a sequence not above the channel’s latest that this key signed; a latest it did not sign says nothing', async () => {
    // The channel's latest: release 6 at sequence 5, signed with the release manager's own key.
    const served = async (work: string) => {
      const key = await parseSecretKey(readFileSync(join(work, 'release.key'), 'utf8'), null);
      const m = { ...body({ release_id: 6 }), sequence: 5, signed_at: '2026-12-01T00:00:00Z', expires_at: '2027-12-01T00:00:00Z' };
      const signed = signReleaseManifest(m as never, key);
      return { release_id: 6, manifest_json: signed.manifestJson, signature: signed.signature };
    };
    for (const next of [4, 5]) {
      const work = tempDir('iqp-release-sign-');
      await keyIn(work);
      const latest = await served(work);
      const posted: string[] = [];
      const registry = await fakeRegistry((req, res) => {
        const url = req.url ?? '';
        if (req.method === 'GET' && url === '/v1/admin/releases/7/manifest-body') return sendJson(res, { body: body(), next_sequence: next, status: 'published' });
        if (req.method === 'GET' && url.startsWith('/v1/releases/latest')) return sendJson(res, latest);
        posted.push(url);
        sendJson(res, { error: { code: 'IQP_E_INTERNAL', message: 'not in this test' } }, 500);
      });
      const r = await iqp(['release', 'resign', '7', '--key', join(work, 'release.key'), '--registry', registry.url, '--token', 'iqp_test_token', '--json'], { cwd: work, env: { HOME: work } });
      expect(r.json().error?.code, r.stdout + r.stderr).toBe('IQP_E_REGISTRY');
      expect(r.json().error.message).toContain('not above 5');
      expect(posted).toEqual([]);
    }
    // Signed by another key (a former release manager's, or the registry's own invention): no bound, the signing goes on.
    const { r, posted } = await resignAgainst({ body: body(), next_sequence: 2, status: 'published' }, () => {
      const other = { ...body({ release_id: 6 }), sequence: 9, signed_at: '2026-12-01T00:00:00Z', expires_at: '2027-12-01T00:00:00Z' };
      return { release_id: 6, manifest_json: JSON.stringify(other), signature: 'untrusted comment: x\nRWQ' };
    });
    expect(posted, r.stdout + r.stderr).toEqual(['/v1/admin/releases/7/resign']);
  });

  it('signs the release named, and says which packs it signed', async () => {
    let signed = '';
    const work = tempDir('iqp-release-sign-');
    await keyIn(work);
    const registry = await fakeRegistry((req, res) => {
      const url = req.url ?? '';
      if (req.method === 'GET' && url === '/v1/admin/releases/7/manifest-body') return sendJson(res, { body: body(), next_sequence: 3, status: 'published' });
      if (req.method === 'GET' && url.startsWith('/v1/releases/latest')) return sendJson(res, { error: { code: 'IQP_E_NOT_FOUND', message: 'none' } }, 404);
      if (req.method === 'POST' && url === '/v1/admin/releases/7/resign') {
        let text = '';
        req.setEncoding('utf8').on('data', (d: string) => (text += d));
        req.on('end', () => {
          signed = JSON.parse(text).manifest_json;
          sendJson(res, { id: 7, name: 'spring', channel: 'stable', status: 'published', sequence: 3, min_app_version: '1.0.0', required_roles: ['translation'], profile: null, notes: '', artifacts: [], published_at: null, deprecated_at: null });
        });
        return;
      }
      sendJson(res, { error: { code: 'IQP_E_NOT_FOUND', message: url } }, 404);
    });
    const r = await iqp(['release', 'resign', '7', '--key', join(work, 'release.key'), '--registry', registry.url, '--token', 'iqp_test_token'], { cwd: work, env: { HOME: work } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(signed)).toMatchObject({ release_id: 7, sequence: 3, artifacts: [{ package_id: 'quran.en', sha256: SHA }] });
    expect(r.stdout).toContain(`translation quran.en@1.0.0 sha256 ${SHA}`);
  });
});
