/** The embedded blob store (content-addressed files) against the shared store contract. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobStoreConformance } from '../../test/server/store-conformance.js';
import { FsBlobStore } from './fs-blobs.js';

blobStoreConformance('FsBlobStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'iqp-blobs-'));
  return { store: new FsBlobStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});
