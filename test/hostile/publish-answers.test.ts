/**
 * `iqp publish` against something that answers in the registry's place (a proxy, a wrong URL, a
 * hostile server): a 200 or 201 is a success only when it describes the pack that was sent, its
 * SHA-256 (hashed as it streamed), size, id, version and signer. Any other is IQP_E_REGISTRY, exit 3.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { iqp, type RunResult } from '../e2e/helpers.js';
import { buildRandomPack, buildTemplatePack, type BuiltPack, newKey, tempDir, type TestKey } from '../server/helpers.js';
import { type FakeRegistry, fakeRegistry, manifestAnswer, sendJson } from './pull-registry.js';

const TOKEN = 'iqp_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
/** For tests that run the CLI once per case. */
const LOOP_TIMEOUT_MS = 180_000;

let key: TestKey;
let pack: BuiltPack;
let dir: string;

beforeAll(async () => {
  key = newKey();
  dir = tempDir('iqp-hostile-publish-answers-');
  pack = await buildTemplatePack(dir, key, { authored: { package_id: 'answers.pack', version: '1.0.0' } });
});

/** What a real registry answers for `pack`. */
const truth = (result: 'created' | 'identical') => ({
  result,
  ...manifestAnswer(pack.package_id, pack.version, { size_bytes: pack.size_bytes, sha256: pack.sha256, signer_key_id: key.keyId }),
});

/** A registry that takes the whole upload in, then answers `status` with `body`. */
async function answering(status: number, body: unknown): Promise<FakeRegistry & { received: Buffer[] }> {
  const received: Buffer[] = [];
  const registry = await fakeRegistry((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      received.push(Buffer.concat(parts));
      sendJson(res, body, status);
    });
  });
  return Object.assign(registry, { received });
}

function publish(registry: FakeRegistry, json = true): Promise<RunResult> {
  return iqp(['publish', pack.path, '--registry', registry.url, ...(json ? ['--json'] : [])], {
    cwd: dir,
    env: { HOME: dir, IQP_TOKEN: TOKEN, IQP_RETRY_BASE_MS: '1' },
  });
}

describe('iqp publish and the answer to its upload', () => {
  it('takes a 201 or 200 that describes the pack sent', async () => {
    for (const [status, result, shown] of [
      [201, 'created', 'published'],
      [200, 'identical', 'identical'],
    ] as const) {
      const registry = await answering(status, truth(result));
      const r = await publish(registry);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.json().packs[0]).toMatchObject({ ok: true, status: shown, package_id: pack.package_id, version: pack.version, sha256: pack.sha256, size_bytes: pack.size_bytes, signer_key_id: key.keyId });
      expect(registry.received).toHaveLength(1);
      expect(registry.received[0]!.equals(readFileSync(pack.path))).toBe(true);
    }
  });

  it('refuses a proxy\'s "identical" for another pack, and says so instead of "already published"', async () => {
    const registry = await answering(200, { result: 'x', package_id: 'other', version: '9.9.9', sha256: 'ab'.repeat(32) });
    const r = await publish(registry, false);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).not.toContain('published');
    expect(r.stderr).toContain('IQP_E_REGISTRY');
    for (const field of ['result', 'package_id', 'version', 'sha256', 'size_bytes', 'signer_key_id']) expect(r.stderr).toContain(field);
    expect(r.stderr).toContain('"other"');
    expect(r.stderr).toContain(pack.package_id);
  });

  it('reports an answer without sha256 as IQP_E_REGISTRY to people too, rather than failing on it', async () => {
    const { sha256: _, ...rest } = truth('created');
    const r = await publish(await answering(201, rest), false);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toContain('IQP_E_REGISTRY');
    expect(r.stderr).toContain('no sha256');
    expect(r.stderr).not.toContain('IQP_E_INTERNAL');
  });

  it('refuses an answer that comes before the whole pack was sent, whatever it says', async () => {
    const big = await buildRandomPack(dir, key, { mib: 16, package_id: 'answers.big', version: '1.0.0' });
    const answer = { result: 'created', ...manifestAnswer(big.package_id, big.version, { size_bytes: big.size_bytes, sha256: big.sha256, signer_key_id: key.keyId }) };
    // Reads the first chunk, answers with the truth, and reads no more: the rest cannot have been checked.
    const registry = await fakeRegistry((req, res) => {
      req.once('data', () => {
        req.pause();
        sendJson(res, answer, 201);
      });
    });
    const r = await iqp(['publish', big.path, '--registry', registry.url, '--json'], { cwd: dir, env: { HOME: dir, IQP_TOKEN: TOKEN, IQP_RETRY_BASE_MS: '1' } });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.json().packs[0].error).toMatchObject({ code: 'IQP_E_REGISTRY', details: { size_bytes: big.size_bytes } });
    expect(r.json().packs[0].error.message).toContain('answered after');
  });

  it('refuses an answer that differs from the pack in any one fact, or is not an answer at all: IQP_E_REGISTRY', async () => {
    const without = (field: string) => Object.fromEntries(Object.entries(truth('created')).filter(([k]) => k !== field));
    const cases: [unknown, string][] = [
      [without('sha256'), 'sha256'],
      [{ ...truth('created'), sha256: '0'.repeat(64) }, 'sha256'],
      [{ ...truth('created'), sha256: 7 }, 'sha256'],
      [{ ...truth('created'), size_bytes: pack.size_bytes + 1 }, 'size_bytes'],
      [{ ...truth('created'), size_bytes: String(pack.size_bytes) }, 'size_bytes'],
      [without('size_bytes'), 'size_bytes'],
      [{ ...truth('created'), package_id: 'other.pack' }, 'package_id'],
      [{ ...truth('created'), version: '1.0.1' }, 'version'],
      [{ ...truth('identical'), result: 'updated' }, 'result'],
      [without('result'), 'result'],
      [{ ...truth('created'), signer_key_id: '0123456789ABCDEF' }, 'signer_key_id'],
      [without('download_url'), 'download_url'],
      [null, 'not a JSON object'],
      [[truth('created')], 'not a JSON object'],
      ['created', 'not a JSON object'],
    ];
    for (const [body, field] of cases) {
      const registry = await answering(201, body);
      const r = await publish(registry);
      const what = JSON.stringify(body)?.slice(0, 120);
      expect(r.code, what + r.stdout + r.stderr).toBe(3);
      const out = r.json();
      expect(out.ok).toBe(false);
      expect(out.packs[0].error.code, what).toBe('IQP_E_REGISTRY');
      expect(out.packs[0].error.message, what).toContain(field);
      expect(registry.hits).toEqual(['PUT /v1/admin/packs']);
    }
  }, LOOP_TIMEOUT_MS);
});
