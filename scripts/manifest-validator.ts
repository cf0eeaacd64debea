/**
 * Compiles docs/schemas/manifest.schema.json into a standalone validator module
 * (src/pack/manifest-validator.generated.ts), so that reading a pack never loads ajv: it is
 * ~14 MiB of memory and 60 ms of start-up for `iqp verify`. A test keeps the file in step with the
 * schema; regenerate with `npm run build && node dist/scripts/manifest-validator.js`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PACKAGE_ROOT, SCHEMAS_DIR } from '../src/paths.js';

const require = createRequire(import.meta.url);

export const GENERATED = join(PACKAGE_ROOT, 'src', 'pack', 'manifest-validator.generated.ts');

/** ajv's ucs2length (string length in code points, as JSON Schema counts it), inlined. */
const UCS2LENGTH = `function ucs2length(str) {
  const len = str.length;
  let length = 0;
  let pos = 0;
  let value;
  while (pos < len) {
    length++;
    value = str.charCodeAt(pos++);
    if (value >= 0xd800 && value <= 0xdbff && pos < len) {
      value = str.charCodeAt(pos);
      if ((value & 0xfc00) === 0xdc00) pos++;
    }
  }
  return length;
}`;

export function renderManifestValidator(): string {
  const Ajv2020 = require('ajv/dist/2020.js').default as typeof import('ajv/dist/2020.js').default;
  const standaloneCode = require('ajv/dist/standalone/index.js').default as typeof import('ajv/dist/standalone/index.js').default;
  // Formats are checked in manifest.ts (created_at must also parse as a date); the pattern in the
  // schema already pins the RFC 3339 shape.
  const ajv = new Ajv2020({ strict: true, allErrors: false, validateFormats: false, code: { source: true, esm: true } });
  const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, 'manifest.schema.json'), 'utf8')) as object;
  let code = standaloneCode(ajv, ajv.compile(schema));
  code = code.replace(/require\("ajv\/dist\/runtime\/ucs2length"\)\.default/g, 'ucs2length');
  if (/require\(/.test(code)) throw new Error('the standalone validator needs a runtime helper that is not inlined');
  return `// @ts-nocheck
// Generated from docs/schemas/manifest.schema.json by scripts/manifest-validator.ts; do not edit.
${UCS2LENGTH}
${code}
`;
}

if (process.argv[1]?.endsWith('manifest-validator.js')) {
  writeFileSync(GENERATED, renderManifestValidator());
}
