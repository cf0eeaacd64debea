/**
 * A terminal that reports 0 columns (`script -qc` and some CI wrappers do) is no terminal to draw
 * on: no spinner, no progress bar. Drawn anyway, the spinner's line count divides by zero and the
 * process spins at 100 % CPU writing escape codes, deaf to SIGTERM. These run the real binary on a
 * real pseudo-terminal (util-linux `script`) set to 0 columns with `stty cols 0`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request, createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, baseEnv, iqp, listTree, tempDir } from '../e2e/helpers.js';
import { buildTemplatePack, newKey, startRegistry, type TestRegistry, upload } from '../server/helpers.js';

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

interface TerminalRun {
  readonly child: ChildProcess;
  /** Everything the pseudo-terminal showed so far. */
  output(): string;
  /** The pid of iqp itself (the shell execs it), once the shell has printed it. */
  readonly pid: Promise<number>;
  readonly exited: Promise<number | null>;
}

/** `iqp args…` on a pseudo-terminal of `cols` columns, with CI unset so iqp may decorate. */
function inTerminal(args: readonly string[], cwd: string, cols: number): TerminalRun {
  const command = `stty cols ${cols} rows 24; echo "IQP_PID=$$"; exec ${quote(process.execPath)} ${[BIN, ...args].map(quote).join(' ')}`;
  const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, env: baseEnv({ CI: undefined, TERM: 'xterm', NO_COLOR: undefined }), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let gotPid: (pid: number) => void;
  const pid = new Promise<number>((r) => (gotPid = r));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    output += d;
    const m = /IQP_PID=(\d+)/.exec(output);
    if (m) {
      pids.add(Number(m[1]));
      gotPid(Number(m[1]));
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, output: () => output, pid, exited };
}

const running = new Set<ChildProcess>();
const pids = new Set<number>();
const servers: Server[] = [];
let registry: TestRegistry | null = null;
afterAll(async () => {
  for (const c of running) c.kill('SIGKILL');
  // iqp itself, should one still spin (script's own death does not end it).
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const s of servers) s.close();
  await registry?.close();
});

/** Cursor-up and hide-cursor: what a spinner or a progress bar writes when it draws. */
const DRAWING = /\x1b\[1A|\x1b\[\?25l/;

describe('a terminal of 0 columns', () => {
  it('gets no spinner: build finishes (and on a terminal with columns, the spinner still draws)', async () => {
    const cwd = tempDir();
    expect((await iqp(['init', 'src', '--template', 'translation', '--yes'], { cwd })).code).toBe(0);

    const zero = inTerminal(['build', 'src', '--unsigned', '--out', 'zero.iqp'], cwd, 0);
    running.add(zero.child);
    expect(await zero.exited, zero.output().slice(0, 2000)).toBe(0);
    expect(zero.output()).not.toMatch(DRAWING);
    expect(existsSync(join(cwd, 'zero.iqp'))).toBe(true);

    const wide = inTerminal(['build', 'src', '--unsigned', '--out', 'wide.iqp'], cwd, 80);
    running.add(wide.child);
    expect(await wide.exited, wide.output().slice(0, 2000)).toBe(0);
    expect(wide.output()).toMatch(DRAWING);
  }, 60_000);

  it('pull stalled mid-download ends on SIGTERM with 143, keeping only the resumable part', async () => {
    const key = newKey();
    registry = await startRegistry({ keys: [key] });
    const pack = await buildTemplatePack(tempDir(), key);
    expect((await upload(registry.url, registry.publisher, pack.path)).status).toBe(201);

    // A registry behind a network that stalls: every answer passes, except that a download
    // sends its headers and a few bytes, then nothing more.
    const upstream = new URL(registry.url);
    let stalled: () => void;
    const isStalled = new Promise<void>((r) => (stalled = r));
    const proxy = createServer((req, res) => {
      const up = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (!req.url!.includes('/download')) return void answer.pipe(res);
        answer.once('data', (chunk: Buffer) => {
          answer.destroy();
          res.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)), () => stalled());
        });
      });
      req.pipe(up);
    });
    servers.push(proxy);
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;

    const cwd = tempDir();
    const run = inTerminal(['pull', `${pack.package_id}@${pack.version}`, '--registry', proxyUrl, '--out', 'packs'], cwd, 0);
    running.add(run.child);
    await isStalled;
    process.kill(await run.pid, 'SIGTERM');
    expect(await run.exited, run.output().slice(0, 2000)).toBe(143);
    expect(run.output()).not.toMatch(DRAWING);
    expect(run.output()).toContain('interrupted (SIGTERM)');
    expect(listTree(join(cwd, 'packs'))).toEqual([`.${pack.package_id}-${pack.version}.iqp.part`]);
  }, 60_000);
});
