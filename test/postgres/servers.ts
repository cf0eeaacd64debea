/** Registries on the test PostgreSQL through the real binary: a fresh schema and child servers per test, stopped and dropped after it. */
import { afterEach } from 'vitest';
import { type ChildServer, spawnServer } from '../server/helpers.js';
import { freshSchema, type TestSchema } from './harness.js';

export function pgServersPerTest(): {
  /** A schema of the test's own (dropped after it). */
  schema(): Promise<TestSchema>;
  /** `iqp server start` on `dataDir` with `env` (stopped after the test). */
  start(dataDir: string, env: Record<string, string>, args?: readonly string[]): Promise<ChildServer>;
} {
  let children: ChildServer[] = [];
  let schemas: TestSchema[] = [];
  afterEach(async () => {
    for (const c of children) c.child.kill('SIGTERM');
    await Promise.all(children.map((c) => c.exited));
    for (const s of schemas) await s.drop();
    children = [];
    schemas = [];
  });
  return {
    schema: async () => {
      const s = await freshSchema();
      schemas.push(s);
      return s;
    },
    start: async (dataDir, env, args = []) => {
      const server = await spawnServer(dataDir, args, env);
      children.push(server);
      return server;
    },
  };
}
