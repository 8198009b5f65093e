// Leader election among replicas on one PostgreSQL (issue 9): one session-level advisory lock, exactly one
// leader at a time, and leadership moves within seconds when the leader's session dies or it closes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { Duties } from '../../src/server/duties.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { PostgresTaskStore } from '../../src/store/postgres/postgres-task-store.ts';
import type { LeaderLease } from '../../src/store/replica-coordination.ts';
import { until } from '../e2e/helpers.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';

const skip = postgresSkip('the leader election tests');
const url = skip ? '' : await freshTestDatabase();
let schemas = 0;
// Leadership moves within one or two campaign rounds (1 s each); the bound leaves room for a loaded CI machine
// and stays inside the "within seconds".
const MOVE_MS = 5000;

async function stores(t: TestContext, n: number): Promise<PostgresTaskStore[]> {
  const schema = `leader${++schemas}_${process.pid}`;
  const all = Array.from({ length: n }, () => new PostgresTaskStore({ url, schema, pool: { max: 2 } }));
  for (const s of all) t.after(() => s.close());
  await Promise.all(all.map((s) => s.start()));
  return all;
}

const leaders = (leases: readonly LeaderLease[]) => leases.filter((l) => l.isLeader).length;

describe('leader election on PostgreSQL', { skip }, () => {
  it('two stores on one schema: exactly one leads, and the other takes over within seconds when it closes', async (t) => {
    const [a, b] = await stores(t, 2);
    const leases = [a!.replicas().leaderLock('duties'), b!.replicas().leaderLock('duties')];
    for (const l of leases) l.start();
    await until('one leader', () => leaders(leases) === 1);
    // Both keep campaigning for a few rounds: still exactly one.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(leaders(leases), 1);
    const leader = leases.findIndex((l) => l.isLeader);
    const t0 = Date.now();
    await leases[leader]!.close();
    await until('the other leads', () => leases[1 - leader]!.isLeader, MOVE_MS + 1000);
    assert.ok(Date.now() - t0 < MOVE_MS, `moved in ${Date.now() - t0} ms`);
  });

  it("a leader whose session is killed steps down at once, and a replica leads again within seconds", async (t) => {
    const [a, b] = await stores(t, 2);
    const started: string[] = [];
    const duties = [a!, b!].map((s, i) => {
      const d = new Duties({ logger: silentLogger, lease: s.replicas().leaderLock('duties') });
      d.register({ name: 'probe', start: () => started.push(`start ${i}`), stop: () => void started.push(`stop ${i}`) });
      t.after(() => d.close());
      d.start();
      return d;
    });
    await until('one leader', () => duties.filter((d) => d.leader).length === 1);
    const leader = duties.findIndex((d) => d.leader);
    assert.deepEqual(started, [`start ${leader}`]);
    // What a crash of the leader's host or a cut network looks like to the server: its session ends.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    t.after(() => admin.end());
    const t0 = Date.now();
    const { rowCount } = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'edgepurge-leader %' AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)");
    assert.equal(rowCount, 1);
    await until('the old leader stepped down', () => !duties[leader]!.leader, MOVE_MS);
    // Both campaign again (the old one on a new session): whichever tries first leads, and only one.
    await until('a replica leads again', () => duties.filter((d) => d.leader).length === 1, MOVE_MS + 1000);
    const moved = Date.now() - t0;
    assert.ok(moved < MOVE_MS, `led again after ${moved} ms`);
    const now = duties.findIndex((d) => d.leader);
    assert.deepEqual(started, [`start ${leader}`, `stop ${leader}`, `start ${now}`], 'the duties stopped before they started again');
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(duties.filter((d) => d.leader).length, 1);
  });

  it('stores on two schemas of one server elect apart', async (t) => {
    const [a] = await stores(t, 1);
    const [b] = await stores(t, 1);
    const leases = [a!.replicas().leaderLock('duties'), b!.replicas().leaderLock('duties')];
    for (const l of leases) l.start();
    await until('both lead', () => leaders(leases) === 2);
  });
});
