#!/usr/bin/env node
// The published entry point: the CLI is compiled to dist/ by `npm run build` (run by `npm ci` via `prepare`).
// First: the threadpool's size has to be set before any module's first file or crypto call.
import '../dist/src/threadpool.js';
import { main } from '../dist/src/cli.js';
import { installSignalHandlers, quietOnClosedPipes } from '../dist/src/lifecycle.js';

// An interrupted command removes what it was writing: never a partial pack, key or config.
installSignalHandlers();
// `iqp … | head -1` is a normal use of a pipe, not a crash.
quietOnClosedPipes();

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  // main answers every failure with a coded error; one that escapes it (a command module that
  // fails to load) is still an internal error, exit 70, not an unhandled rejection's exit 1.
  (err) => {
    process.stderr.write(`error IQP_E_INTERNAL: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 70;
  },
);
