/** Writes the README's configuration table from the settings table (src/cli/settings.ts); a test keeps the two in step. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/atomic.js';
import { renderSettingsTable, TABLE_END, TABLE_START, withTable } from '../src/cli/settings-doc.js';
import { PACKAGE_ROOT } from '../src/paths.js';

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const path = join(PACKAGE_ROOT, 'README.md');
  const updated = withTable(readFileSync(path, 'utf8'), renderSettingsTable());
  if (updated === null) {
    process.stderr.write(`${path} has no "${TABLE_START}" … "${TABLE_END}" markers around its configuration table.\n`);
    process.exit(1);
  }
  writeFileAtomic(path, updated);
}
