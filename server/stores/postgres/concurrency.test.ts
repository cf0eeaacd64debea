/**
 * Several servers over one PostgreSQL database, each with its own pool: migrations apply once
 * however many start together, and racing writes settle as the contract says, never as an error.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { newRelease, signedManifest } from '../../../test/server/release-store-conformance.js';
import { samplePack } from '../../../test/server/store-conformance.js';
import { describePg, freshSchema, type TestSchema } from '../../../test/postgres/harness.js';
import { artifactsKey } from '../release-types.js';
import type { PackRecord } from '../types.js';
import { PostgresMetadataStore } from './metadata.js';
import { PG_MIGRATIONS } from './migrations.js';
import { PostgresReleaseStore } from './releases.js';

const audit = (p: PackRecord) => ({ at: p.published_at, actor: 'test', action: 'pack.publish', target: `${p.package_id}@${p.version}`, details: null });

describePg('PostgreSQL: several servers on one database', () => {
  let schema: TestSchema;
  let stores: PostgresMetadataStore[];

  beforeEach(async () => {
    schema = await freshSchema();
    stores = [0, 1, 2].map(() => new PostgresMetadataStore(schema.options()));
  });
  afterEach(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await schema.drop();
  });

  it('three servers migrating at once apply each migration exactly once', async () => {
    const applied = await Promise.all(stores.map((s) => s.migrate()));
    expect(applied.flat().sort((a, b) => a - b)).toEqual(PG_MIGRATIONS.map((m) => m.version));
    const ledger = await schema.sql('SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version');
    expect(ledger.rows).toEqual(PG_MIGRATIONS.map((m) => ({ version: m.version, n: 1 })));
    expect((await schema.sql('SELECT count(*)::int AS n FROM registry_identity')).rows[0].n, 'one registry id').toBe(1);
    expect(await Promise.all(stores.map((s) => s.migrate()))).toEqual([[], [], []]);
  });

  it('two servers inserting one id@version at once: exactly one created, the other identical or conflict', async () => {
    const [a, b] = stores as [PostgresMetadataStore, PostgresMetadataStore];
    await Promise.all([a.migrate(), b.migrate()]);
    for (let i = 0; i < 10; i += 1) {
      const p = samplePack({ id: `race.same${i}`, version: '1.0.0' });
      expect((await Promise.all([a.insertPack(p, audit(p)), b.insertPack(p, audit(p))])).sort()).toEqual(['created', 'identical']);
      const q = samplePack({ id: `race.other${i}`, version: '1.0.0' });
      const other = { ...q, sha256: 'f'.repeat(64) };
      const results = await Promise.all([a.insertPack(q, audit(q)), b.insertPack(other, audit(other))]);
      expect([...results].sort()).toEqual(['conflict', 'created']);
      const winner = results[0] === 'created' ? q : other;
      expect(await b.getPack(q.package_id, '1.0.0')).toEqual(winner);
    }
    expect(await a.countPacks()).toBe(20);
    expect((await a.listAudit(100, null)).items, 'one audit entry per pack created').toHaveLength(20);
  });

  it('two servers publishing at once: one release takes the channel’s next sequence, the other is refused', async () => {
    const [a, b] = stores as [PostgresMetadataStore, PostgresMetadataStore];
    await Promise.all([a.migrate(), b.migrate()]);
    const p = samplePack({ id: 'a.text', version: '1.0.0' });
    await a.insertPack(p, audit(p));
    const [ra, rb] = [new PostgresReleaseStore(a.db), new PostgresReleaseStore(b.db)];
    const artifact = { role: 'text', package_id: 'a.text', version: '1.0.0', attached_at: '2026-01-01T00:00:00.000Z' };
    const key = artifactsKey([artifact]);
    const drafts = [];
    for (const name of ['one', 'two']) {
      const r = await ra.createRelease(newRelease(name));
      if (r === 'exists') throw new Error('exists');
      await ra.attachArtifact(r.id, artifact, 'test');
      drafts.push(r.id);
    }
    const [one, two] = drafts as [number, number];
    const publish = (s: PostgresReleaseStore, id: number, sequence: number) => s.publishRelease(id, signedManifest(sequence), key, '2026-01-02T00:00:00.000Z', 'test');
    const first = await Promise.all([publish(ra, one, 1), publish(rb, two, 1)]);
    expect([...first].sort(), 'two drafts, one sequence').toEqual(['published', 'sequence']);
    const refused = first[0] === 'published' ? two : one;
    expect((await Promise.all([publish(ra, refused, 2), publish(rb, refused, 2)])).sort(), 'one draft, twice').toEqual(['not-draft', 'published']);
    expect(await rb.channelSequence('stable')).toBe(2);
    expect((await ra.listPublished('stable')).map((r) => r.signed!.sequence)).toEqual([2, 1]);
    const created = await Promise.all([ra.createRelease(newRelease('three')), rb.createRelease(newRelease('three'))]);
    expect(created.filter((r) => r === 'exists'), 'one name per channel').toHaveLength(1);
  });
});
