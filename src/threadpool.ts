/**
 * Sizes libuv's threadpool before anything uses it (it is made at its first use, with
 * UV_THREADPOOL_SIZE threads, and never resized). The default, 4, is exactly the auth plugin's
 * default number of password hashes at once: four 40 ms hashes would leave every file read, WAL
 * fdatasync (server/plugins/wal-sync.ts) and WebCrypto signature queued behind them. An operator's
 * own setting is kept. Imported first by bin/iqp.js, before any module that could touch a file.
 */
process.env['UV_THREADPOOL_SIZE'] ??= '8';

export {};
