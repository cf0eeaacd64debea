#!/usr/bin/env node
// The published entry point: the CLI is compiled to dist/ by `npm run build` (run by `npm ci` via `prepare`).
import { main } from '../dist/src/cli.js';
import { removePendingTemps } from '../dist/src/atomic.js';

// An interrupted command removes what it was writing: never a partial pack, key or config.
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(signal, () => {
    removePendingTemps();
    process.stderr.write(`\ninterrupted (${signal}); nothing was written\n`);
    process.exit(code);
  });
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
