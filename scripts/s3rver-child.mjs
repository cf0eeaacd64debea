// The S3-compatible server for the S3 blob store's tests and the storage benchmark (scripts/s3rver.ts starts it): s3rver
// over S3RVER_DIR on 127.0.0.1 with a port the system picks, printed as one JSON line. It runs as a
// child, under --openssl-legacy-provider, because s3rver encrypts ListObjectsV2 continuation tokens
// with DES, which OpenSSL 3 keeps only in its legacy provider. Plain JS so it starts without a
// TypeScript loader. It exits when its stdin closes, so it never outlives the process that started it.
//
// s3rver 3.7 has no ListMultipartUploads or AbortMultipartUpload. The two are answered here, from
// s3rver's own layout of uploads in progress (<dir>/<bucket>/._S3rver_uploads/<uploadId>/, with
// the key in a file `key` written when the upload begins), for path-style requests only. And it
// reads the end of `Range: bytes=0-0` as absent (0 is falsy), answering with the whole object: that
// one range is served here too.
import { createServer } from 'node:http';
import { open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import S3rver from 's3rver';

const dir = process.env.S3RVER_DIR;
if (!dir) throw new Error('S3RVER_DIR is not set');
const s3rver = new S3rver({ directory: dir, silent: true });
const s3 = s3rver.getMiddleware();

const xml = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
}

const uploadsDir = (bucket) => join(dir, bucket, '._S3rver_uploads');

/** Every upload in progress in `bucket`: { key, uploadId, initiated }. */
async function uploads(bucket) {
  const ids = await readdir(uploadsDir(bucket)).catch(() => []);
  const out = [];
  for (const uploadId of ids) {
    const keyFile = join(uploadsDir(bucket), uploadId, 'key');
    const key = await readFile(keyFile, 'utf8').catch(() => null);
    if (key === null) continue;
    out.push({ key, uploadId, initiated: (await stat(keyFile)).mtime });
  }
  return out.sort((a, b) => (a.key === b.key ? (a.uploadId < b.uploadId ? -1 : 1) : a.key < b.key ? -1 : 1));
}

async function listUploads(bucket, q, res) {
  const prefix = q.get('prefix') ?? '';
  const keyMarker = q.get('key-marker') ?? '';
  const idMarker = q.get('upload-id-marker') ?? '';
  const max = Number(q.get('max-uploads') ?? 1000);
  const after = (u) => u.key > keyMarker || (u.key === keyMarker && idMarker !== '' && u.uploadId > idMarker);
  const matching = (await uploads(bucket)).filter((u) => u.key.startsWith(prefix) && (keyMarker === '' || after(u)));
  const page = matching.slice(0, max);
  const truncated = matching.length > page.length;
  const last = page.at(-1);
  const items = page.map((u) => `<Upload><Key>${xml(u.key)}</Key><UploadId>${u.uploadId}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`);
  reply(
    res,
    200,
    `<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xml(bucket)}</Bucket><Prefix>${xml(prefix)}</Prefix>` +
      `<KeyMarker>${xml(keyMarker)}</KeyMarker><UploadIdMarker>${xml(idMarker)}</UploadIdMarker><MaxUploads>${max}</MaxUploads><IsTruncated>${truncated}</IsTruncated>` +
      (truncated && last ? `<NextKeyMarker>${xml(last.key)}</NextKeyMarker><NextUploadIdMarker>${last.uploadId}</NextUploadIdMarker>` : '') +
      `${items.join('')}</ListMultipartUploadsResult>`,
  );
}

async function abortUpload(bucket, key, uploadId, res) {
  const found = (await uploads(bucket)).find((u) => u.uploadId === uploadId && u.key === key);
  if (!found) return reply(res, 404, `<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>`);
  await rm(join(uploadsDir(bucket), uploadId), { recursive: true, force: true });
  res.writeHead(204);
  res.end();
}

/** The first byte of an object, as S3 answers `Range: bytes=0-0`; anything else goes to s3rver. */
async function firstByte(bucket, key, res, fallback) {
  const parts = key.split('/');
  const file = join(dir, bucket, ...parts.slice(0, -1), `${parts.at(-1)}._S3rver_object`);
  const info = await stat(file).catch(() => null);
  if (!info || info.size === 0) return fallback();
  const fh = await open(file);
  const byte = Buffer.alloc(1);
  try {
    await fh.read(byte, 0, 1, 0);
  } finally {
    await fh.close();
  }
  res.writeHead(206, { 'Content-Range': `bytes 0-0/${info.size}`, 'Content-Length': 1, 'Accept-Ranges': 'bytes', 'Last-Modified': info.mtime.toUTCString() });
  res.end(byte);
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://s3rver');
  const [bucket = '', ...rest] = url.pathname.slice(1).split('/');
  const key = decodeURIComponent(rest.join('/'));
  const fail = (err) => reply(res, 500, `<Error><Code>InternalError</Code><Message>${xml(err.message)}</Message></Error>`);
  if (req.method === 'GET' && bucket && !key && url.searchParams.has('uploads')) return void listUploads(bucket, url.searchParams, res).catch(fail);
  if (req.method === 'DELETE' && key && url.searchParams.has('uploadId')) return void abortUpload(bucket, key, url.searchParams.get('uploadId'), res).catch(fail);
  if (req.method === 'GET' && key && req.headers.range === 'bytes=0-0') return void firstByte(bucket, key, res, () => s3(req, res)).catch(fail);
  s3(req, res);
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
