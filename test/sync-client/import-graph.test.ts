/**
 * The browser entry must bundle for a web page as it is: nothing in the import graph of
 * src/sync-client/index.ts may import a node: module or any package, or lean on Node globals.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const ENTRY = join(ROOT, 'src', 'sync-client', 'index.ts');

/** Every module specifier in a file: static imports and re-exports (type-only too), dynamic import(), require(). */
function specifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [/\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[1]!);
  return out;
}

function graph(entry: string): { files: string[]; bad: string[] } {
  const seen = new Set<string>();
  const bad: string[] = [];
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    const from = relative(ROOT, file);
    for (const spec of specifiers(source)) {
      if (!spec.startsWith('./') && !spec.startsWith('../')) {
        bad.push(`${from} imports ${spec}`);
        continue;
      }
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      if (!target.startsWith(join(ROOT, 'src', 'sync-client'))) bad.push(`${from} reaches outside src/sync-client: ${spec}`);
      queue.push(target);
    }
    // Node globals that a bundler would not provide either.
    const code = source.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    for (const g of ['Buffer', 'process.', '__dirname', 'require(', 'setImmediate']) if (code.includes(g)) bad.push(`${from} uses ${g}`);
  }
  return { files: [...seen].map((f) => relative(ROOT, f)).sort(), bad };
}

describe('the browser entry iqp/sync-client', () => {
  it('imports no node: module, no package and no Node global anywhere in its graph', () => {
    const { files, bad } = graph(ENTRY);
    expect(bad).toEqual([]);
    // The walk really walked: the client, its stores and its transport are in the graph.
    expect(files).toEqual(expect.arrayContaining(['src/sync-client/client.ts', 'src/sync-client/indexeddb-store.ts', 'src/sync-client/transport.ts', 'src/sync-client/pull.ts']));
    expect(files).not.toContain('src/sync-client/file-store.ts');
  });

  it('the walk catches every way a file can import (held on a sample)', () => {
    const sample = [
      "import { a } from 'node:fs';",
      "import type { B } from 'better-sqlite3';",
      "export * from './x.js';",
      "export { y } from '../y.js';",
      "import 'side-effect';",
      "const m = await import('node:path');",
      "const r = require('fs');",
      'import {\n  multi,\n  line,\n} from "multi-line-pkg";',
    ].join('\n');
    expect(specifiers(sample).sort()).toEqual(['../y.js', './x.js', 'better-sqlite3', 'fs', 'multi-line-pkg', 'node:fs', 'node:path', 'side-effect'].sort());
  });

  it('package.json exports both entries at the files the build emits', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.exports['./sync-client']).toBe('./dist/src/sync-client/index.js');
    expect(pkg.exports['./sync-client/node']).toBe('./dist/src/sync-client/node.js');
  });

  it('the node entry does bring the Node stores (so the split is real)', () => {
    const source = readFileSync(join(ROOT, 'src', 'sync-client', 'node.ts'), 'utf8');
    expect(specifiers(source)).toEqual(expect.arrayContaining(['./file-store.js', './sqlite-store.js', './index.js']));
  });
});
