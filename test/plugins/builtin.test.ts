/**
 * Built-in plugins (plugins/<id>/, compiled to dist/plugins/<id>/) carry their iqp-plugin.json into
 * dist: tsc copies it because index.ts imports it. Checked after `npm run build`, for every one.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_DIR } from '../../server/plugins/loader.js';
import { readManifest } from '../../server/plugins/manifest.js';
import { ROOT } from '../e2e/helpers.js';

const SOURCES = join(ROOT, 'plugins');
const ids = existsSync(SOURCES) ? readdirSync(SOURCES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name) : [];

describe.runIf(ids.length > 0)('built-in plugins', () => {
  it.each(ids)('%s: dist holds its manifest, equal to the source, and it checks', (id) => {
    const built = join(BUILTIN_DIR, id, 'iqp-plugin.json');
    expect(existsSync(built)).toBe(true);
    expect(JSON.parse(readFileSync(built, 'utf8'))).toEqual(JSON.parse(readFileSync(join(SOURCES, id, 'iqp-plugin.json'), 'utf8')));
    expect(readManifest(join(BUILTIN_DIR, id)).id).toBe(id);
  });
});
