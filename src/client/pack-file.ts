/**
 * Where a pulled pack goes in --out, and whether it is already there. The id and the version come
 * from the user or from a registry's answer: neither may lead a file out of --out.
 */
import { lstat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { IqpError } from '../errors.js';
import { sha256File } from '../pack/build.js';
import { isValidPackageId, packFileName } from '../pack/format.js';
import { isPackVersion } from './refs.js';

export interface PackPaths {
  /** `<out>/<id>-<version>.iqp` */
  readonly final: string;
  /** `<out>/.<id>-<version>.iqp.part`, kept between runs to resume from. */
  readonly part: string;
}

export function packPaths(outDir: string, packageId: string, version: string): PackPaths {
  if (!isValidPackageId(packageId)) throw new IqpError('IQP_E_INVALID_ID', `${JSON.stringify(packageId)} is not a valid package id.`);
  if (!isPackVersion(version)) throw new IqpError('IQP_E_INVALID_VERSION', `${JSON.stringify(version)} is not a pack version.`);
  const dir = resolve(outDir);
  const fileName = packFileName(packageId, version);
  const paths = { final: join(dir, fileName), part: join(dir, `.${fileName}.part`) };
  // The rules above already make both plain names; this holds even if they ever loosen.
  for (const path of Object.values(paths)) {
    const rel = relative(dir, path);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || /[\\/]/.test(rel)) {
      throw new IqpError('IQP_E_INVALID_VERSION', `${packageId}@${version} would be written outside ${dir}.`);
    }
  }
  return paths;
}

/**
 * What is at the final path: nothing, the announced pack (same size and SHA-256), or another file.
 * Only a regular file can be the pack; a folder there could never be replaced, so it is an error now
 * rather than after the download.
 */
export async function localCopy(path: string, expected: { size: number; sha256: string }): Promise<'absent' | 'same' | 'different'> {
  const info = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (info === null) return 'absent';
  if (info.isDirectory()) {
    throw new IqpError('IQP_E_USAGE', `${path} is a folder; the pack cannot be saved under that name.`, { path }, { hint: 'Move or rename that folder, or pull into another --out.' });
  }
  if (!info.isFile() || info.size !== expected.size) return 'different';
  return (await sha256File(path)) === expected.sha256 ? 'same' : 'different';
}
