/**
 * The S3 client as S3BlobStore builds it, checked on the requests it would send (captured just
 * before they would leave, so nothing here needs a server): what s3rver cannot tell us, since it
 * accepts any signature and any checksum header.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../s3-blobs.js';
import { checkOptions, type S3BlobStoreOptions, s3ClientConfig } from './options.js';

const base: S3BlobStoreOptions = { region: 'eu-west-1', bucket: 'iqp-packs', prefix: 'iqp/', forcePathStyle: false, checksums: 'when_required', stagingDir: '/tmp/iqp-staging' };

interface Sent {
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number | undefined;
  readonly path: string;
  readonly headers: Record<string, string>;
}

class Captured extends Error {
  constructor(readonly sent: Sent) {
    super('captured');
  }
}

/** The request `client` would send for a small PutObject, signed, without sending it. */
async function sentBy(client: S3Client): Promise<Sent> {
  client.middlewareStack.add(
    () => async (args) => {
      throw new Captured(args.request as Sent);
    },
    { step: 'deserialize', name: 'iqpTestCapture' },
  );
  try {
    await client.send(new PutObjectCommand({ Bucket: 'iqp-packs', Key: `iqp/sha256/${'a'.repeat(64)}`, Body: 'pack bytes' }));
  } catch (err) {
    if (err instanceof Captured) return err.sent;
    throw err;
  } finally {
    client.destroy();
  }
  throw new Error('the request was not captured');
}

const ENV = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'] as const;
let saved: Record<string, string | undefined>;
beforeEach(() => {
  saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
  process.env['AWS_ACCESS_KEY_ID'] = 'AKIAIQPTESTKEY';
  process.env['AWS_SECRET_ACCESS_KEY'] = 'not-a-real-secret';
  delete process.env['AWS_SESSION_TOKEN'];
});
afterEach(() => {
  for (const k of ENV) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe('the S3 client S3BlobStore builds', () => {
  it('sends checksums only where S3 requires them with when_required, and CRC32 on every upload with when_supported', async () => {
    const required = new S3BlobStore({ ...base, checksums: 'when_required' }).client;
    expect([await required.config.requestChecksumCalculation(), await required.config.responseChecksumValidation()]).toEqual(['WHEN_REQUIRED', 'WHEN_REQUIRED']);
    const plain = await sentBy(required);
    expect(Object.keys(plain.headers).filter((h) => /checksum/i.test(h))).toEqual([]);

    const supported = new S3BlobStore({ ...base, checksums: 'when_supported' }).client;
    expect([await supported.config.requestChecksumCalculation(), await supported.config.responseChecksumValidation()]).toEqual(['WHEN_SUPPORTED', 'WHEN_SUPPORTED']);
    const withCrc = await sentBy(supported);
    expect(Object.keys(withCrc.headers).map((h) => h.toLowerCase())).toContain('x-amz-checksum-crc32');
  });

  it('addresses an S3-compatible endpoint path-style when asked', async () => {
    const sent = await sentBy(new S3BlobStore({ ...base, endpoint: 'http://127.0.0.1:9000', forcePathStyle: true }).client);
    expect([sent.protocol, sent.hostname, sent.port, sent.path]).toEqual(['http:', '127.0.0.1', 9000, `/iqp-packs/iqp/sha256/${'a'.repeat(64)}`]);
  });

  it('addresses the bucket as a host name otherwise, on the endpoint given or on AWS for the region', async () => {
    const custom = await sentBy(new S3BlobStore({ ...base, endpoint: 'https://objects.example.test' }).client);
    expect([custom.protocol, custom.hostname, custom.path]).toEqual(['https:', 'iqp-packs.objects.example.test', `/iqp/sha256/${'a'.repeat(64)}`]);
    const aws = await sentBy(new S3BlobStore(base).client);
    expect(aws.hostname).toBe('iqp-packs.s3.eu-west-1.amazonaws.com');
  });

  it('signs with the credentials the default provider chain finds in the environment, never with options', async () => {
    expect(s3ClientConfig(base)).not.toHaveProperty('credentials');
    // @ts-expect-error credentials are not an option of the store
    const withKeys: S3BlobStoreOptions = { ...base, credentials: { accessKeyId: 'AKIAFROMOPTIONS', secretAccessKey: 'x' } };
    const client = new S3BlobStore(withKeys).client;
    expect((await client.config.credentials()).accessKeyId).toBe('AKIAIQPTESTKEY');
    const sent = await sentBy(client);
    const authorization = Object.entries(sent.headers).find(([h]) => h.toLowerCase() === 'authorization')?.[1];
    expect(authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAIQPTESTKEY\/\d{8}\/eu-west-1\/s3\/aws4_request/);
  });
});

describe('checkOptions', () => {
  it('accepts an empty prefix or one ending in a slash and any bucket name S3 ever allowed, and refuses what cannot work with IQP_E_CONFIG naming the option', () => {
    expect(() => checkOptions({ ...base, prefix: '' })).not.toThrow();
    expect(() => checkOptions({ ...base, prefix: 'registry/packs/' })).not.toThrow();
    expect(() => checkOptions({ ...base, bucket: 'Legacy_Bucket.2012' }), 'an old us-east-1 name').not.toThrow();
    const refused: [Partial<S3BlobStoreOptions>, string][] = [
      [{ prefix: 'iqp' }, 'prefix'],
      [{ prefix: '/iqp/' }, 'prefix'],
      [{ prefix: 'a//b/' }, 'prefix'],
      [{ bucket: 'packs/iqp' }, 'bucket'],
      [{ bucket: 'my packs' }, 'bucket'],
      [{ bucket: 'ab' }, 'bucket'],
      [{ region: '' }, 'region'],
      [{ endpoint: 'minio:9000' }, 'endpoint'],
      [{ endpoint: 'ftp://minio' }, 'endpoint'],
      [{ checksums: 'always' as S3BlobStoreOptions['checksums'] }, 'checksums'],
      [{ stagingDir: '' }, 'stagingDir'],
      [{ pageSize: 0 }, 'pageSize'],
      [{ pageSize: 1001 }, 'pageSize'],
    ];
    for (const [change, key] of refused) {
      expect(() => new S3BlobStore({ ...base, ...change }), JSON.stringify(change)).toThrow(expect.objectContaining({ code: 'IQP_E_CONFIG', details: { key } }));
    }
  });
});
