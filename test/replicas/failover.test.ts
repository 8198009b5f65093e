// Real processes (issue 9, failover): 3 `edgepurge serve` replicas on one PostgreSQL, 3 built-in edges
// (`edgepurge edge`) that list all of them and all stream from cp-1. kill -9 of cp-1 under load: every
// edge moves to another replica within seconds (its failover counter says so), every acknowledged purge
// reaches `success` (every node applied it: not fenced, not timed out), and no edge serves a purged copy:
// each object is bumped at the origin before every purge of it, and real GETs through every edge then
// return the current version.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ACME } from '../helpers/control-plane.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { Origin, sleep, until } from '../e2e/helpers.ts';
import { ProcessFleet } from './process-fleet.ts';

const skip = postgresSkip('the replica failover tests');
const url = skip ? '' : await freshTestDatabase();
const SCHEMA = 'failover';
const OBJECTS = 8;
const path = (k: number) => `/obj/${k}.html`;

describe('kill -9 of the replica every edge streams from, under load', { skip, concurrency: false }, () => {
  const origin = new Origin();
  let fleet: ProcessFleet;
  let db: pg.Client;

  before(async () => {
    await origin.start();
    fleet = await ProcessFleet.start({ url, schema: SCHEMA, origin, replicas: 3, edges: 3, leaseMs: 2000 });
    db = new pg.Client({ connectionString: url });
    await db.connect();
  });
  after(async () => {
    await fleet?.close();
    await db?.end();
    await origin.close();
  });

  it('every edge moves, every task reaches success, no purged copy is served', async () => {
    for (const e of fleet.edges) {
      for (let k = 0; k < OBJECTS; k++) {
        await fleet.get(e, path(k));
        assert.equal((await fleet.get(e, path(k))).xcache, 'HIT', `${e.name} caches ${path(k)}`);
      }
      assert.equal((await fleet.stream(e))?.failovers, 0);
    }

    const acknowledged: string[] = [];
    let stop = false;
    let refusedByDead = 0;
    // Each submitter bumps an object at the origin, then purges it until some replica acknowledges the
    // purge: every version change is followed by an acknowledged purge, so at the end every edge must
    // serve the current version.
    const submitter = async (w: number) => {
      for (let i = w; !stop; i += 3) {
        const k = i % OBJECTS;
        origin.bump(ACME.host, path(k));
        for (let attempt = 0; ; attempt++) {
          const r = fleet.replicas[(i + attempt) % fleet.replicas.length]!;
          try {
            const { JobId } = await r.sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: i % 2 ? 'delete' : 'invalidate', Targets: [`http://${ACME.host}${path(k)}`] });
            acknowledged.push(JobId as string);
            break;
          } catch {
            refusedByDead++;
          }
        }
      }
    };
    const load = [0, 1, 2].map(submitter);
    await sleep(1000);
    const beforeKill = acknowledged.length;
    await fleet.kill(0);
    const killedAt = Date.now();
    await until('every edge streaming from another replica', async () => {
      const s = await Promise.all(fleet.edges.map((e) => fleet.stream(e)));
      return s.every((x) => x?.connected && x.failovers >= 1);
    }, 10_000);
    const movedMs = Date.now() - killedAt;
    console.log(`# every edge streaming again ${movedMs} ms after kill -9 (${beforeKill} purges acknowledged before it)`);
    await sleep(1000);
    stop = true;
    await Promise.all(load);
    console.log(`# ${acknowledged.length} purges acknowledged, ${refusedByDead} attempts failed on the dead replica`);
    assert.ok(acknowledged.length > beforeKill, 'the surviving replicas kept acknowledging');

    const { rows } = await db.query<{ job_id: string }>(`SELECT job_id FROM ${SCHEMA}.jobs WHERE job_id = ANY($1)`, [acknowledged]);
    assert.equal(rows.length, acknowledged.length, 'every acknowledged JobId is in the store');
    await until('every task settled', async () => (await db.query(`SELECT 1 FROM ${SCHEMA}.tasks WHERE status = 'processing' LIMIT 1`)).rowCount === 0, 30_000);
    const statuses = await db.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM ${SCHEMA}.tasks GROUP BY status`);
    assert.deepEqual(statuses.rows.map((r) => r.status), ['success'], `true final status: applied by every node (${JSON.stringify(statuses.rows)})`);
    // The DescribePurgeTasks answer of a surviving replica agrees.
    const survivor = fleet.alive()[0]!;
    const { Tasks } = await survivor.sdk.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [acknowledged.at(-1)] }] });
    assert.equal(Tasks[0].Status, 'success');
    const last = Number((await db.query(`SELECT value FROM ${SCHEMA}.store_meta WHERE key = 'last_seq'`)).rows[0].value);
    for (const e of fleet.edges) {
      const s = (await fleet.stream(e))!;
      assert.equal(s.appliedSeq, last, `${e.name} applied the whole log`);
      assert.equal(s.failovers, 1, `${e.name} moved once`);
      for (let k = 0; k < OBJECTS; k++) {
        const got = await fleet.get(e, path(k));
        assert.equal(got.body, origin.body(ACME.host, path(k)), `${e.name} serves the current ${path(k)} (X-Cache ${got.xcache})`);
      }
    }
  });
});
