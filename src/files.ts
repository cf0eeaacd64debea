/**
 * Paths a user names, checked before they are used, so that a mistake is reported as what it is
 * (a folder that does not exist, a folder given for a file, a file given for a folder), naming the
 * path they typed rather than a temp file or a bare EISDIR.
 */
import { existsSync, type Stats, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { IqpError } from './errors.js';

/**
 * Refuses a target whose folder is missing, or whose path runs through a plain file, naming the
 * folder to create (or the file in the way) rather than the temp file a write would fail on first.
 */
export function requireFolderFor(target: string): void {
  const folder = dirname(target);
  let existing = folder;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  if (existing === folder && statSync(folder).isDirectory()) return;
  const hint = { hint: `Create the folder first (mkdir -p ${folder}), or choose another path.` };
  if (statSync(existing).isDirectory()) {
    throw new IqpError('IQP_E_FILE_NOT_FOUND', `Cannot write ${target}: the folder ${folder} does not exist.`, { path: target }, hint);
  }
  throw new IqpError('IQP_E_FILE_NOT_FOUND', `Cannot write ${target}: ${existing} is a file, not a folder.`, { path: target }, { hint: 'Choose a path inside a folder.' });
}

/**
 * A file to read: missing is IQP_E_FILE_NOT_FOUND ("<what> not found: <path>"), a folder
 * IQP_E_USAGE. Pipes and devices pass (a key may come from `--key <(…)`); the stats say which.
 */
export async function requireFile(path: string, what: string): Promise<Stats> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new IqpError('IQP_E_FILE_NOT_FOUND', `${what} not found: ${path}`, { path });
    throw err;
  });
  if (!info.isDirectory()) return info;
  throw new IqpError('IQP_E_USAGE', `${path} is a folder, not a file.`, { path }, { hint: `Give the path of the ${what.toLowerCase()} file itself.` });
}

/** A folder to write into (made if missing): a plain file there is IQP_E_USAGE, naming the option that gave it. */
export function requireFolder(path: string, option: string): void {
  const info = statSync(path, { throwIfNoEntry: false });
  if (info === undefined || info.isDirectory()) return;
  throw new IqpError('IQP_E_USAGE', `${option} ${path}: ${path} is a file, not a folder.`, { path }, {
    hint: `Name a folder for ${option} (it is created if missing), or another path.`,
  });
}
