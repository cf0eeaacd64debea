/** Renders docs/errors.md from the error catalog (src/errors.ts); a test keeps the two in step. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CATALOG, EXIT } from '../src/errors.js';
import { PACKAGE_ROOT } from '../src/paths.js';

export function renderErrorDocs(): string {
  const meaning: Record<keyof typeof EXIT, string> = {
    ok: 'success',
    check: 'a check failed (e.g. verify found a problem, bad source data)',
    usage: 'usage error: bad flag, missing value, missing file',
    network: 'network or registry error',
    io: 'local I/O error (disk full, permission denied)',
    internal: 'internal error: a bug in iqp',
    cancelled: 'cancelled at a prompt (Ctrl-C)',
  };
  const exits = (Object.entries(EXIT) as [keyof typeof EXIT, number][])
    .map(([name, code]) => `| ${code} | ${meaning[name]} |`)
    .join('\n');
  const rows = Object.entries(CATALOG)
    .map(([code, spec]) => `| \`${code}\` | ${spec.exit} | ${spec.http} | ${spec.message} | ${spec.hint.replaceAll('|', '\\|')} |`)
    .join('\n');
  return `# Error codes

Generated from \`src/errors.ts\` by \`node dist/scripts/error-docs.js\`; do not edit by hand.
The CLI and the registry speak the same codes: the CLI exits with the exit code and prints the
message and hint (with \`--json\`: \`{ "error": { "code", "message", "hint", "details"? } }\`); the
registry answers with the HTTP status and \`{ "error": { "code", "message", "details"? } }\`.

## Exit codes

| exit | meaning |
|---|---|
${exits}

## Codes

| code | exit | HTTP | message | hint |
|---|---|---|---|---|
${rows}
`;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  writeFileSync(join(PACKAGE_ROOT, 'docs', 'errors.md'), renderErrorDocs());
}
