// `edgepurge store migrate`: a SQLite store with history made through the real API (SDK purges and
// prefetches applied by a real edge) moves into a fresh PostgreSQL database; a control plane on it
// answers DescribePurgeTasks with the same tasks, the same quota usage, node reports and prefetch results, and the edge
// resumes from its applied seq (no cache reset) and applies the next purge. A non-empty target is refused
// unless --replace.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { startEdgeNode } from '../../src/cli/edge.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ControlPlane } from '../../src/server/control-plane.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { PostgresTaskStore } from '../../src/store/postgres/postgres-task-store.ts';
import { SqliteTaskStore } from '../../src/store/sqlite/sqlite-task-store.ts';
import type { TaskStore } from '../../src/store/task-store.ts';
import { ACME, baseConfig } from '../helpers/control-plane.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { teoClient } from '../helpers/sdk.ts';
import { edgeGet, freePort, Origin, until } from '../e2e/helpers.ts';

const skip = postgresSkip('the store migrate tests');
const url = skip ? '' : await freshTestDatabase();
const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');
const NODE = { id: 'edge-1', token: 'token-edge-1-0123456789abcdef' };

function cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env };
  for (const k of ['NODE_TEST_CONTEXT', 'NODE_OPTIONS']) delete env[k];
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Everything DescribePurgeTasks shows of the zone, oldest first. */
async function describeAll(endpoint: string): Promise<unknown[]> {
  const teo = teoClient(endpoint, ACME.secretId, ACME.secretKey);
  const out: unknown[] = [];
  for (const type of ['purge_url', 'purge_prefix', 'purge_host', 'prefetch_url']) {
    const action = type === 'prefetch_url' ? 'DescribePrefetchTasks' : 'DescribePurgeTasks';
    const r = await teo[action]({ ZoneId: ACME.zoneId, StartTime: iso(Date.now() - 3_600_000), EndTime: iso(Date.now() + 3_600_000), Limit: 1000, ...(type === 'prefetch_url' ? {} : { Filters: [{ Name: 'type', Values: [type] }] }) });
    out.push(...r.Tasks);
  }
  return out;
}

describe('edgepurge store migrate', { skip }, () => {
  it('moves history, log, quotas, node progress and the webhook outbox; the control plane on PostgreSQL answers the same and the node resumes', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'edgepurge-migrate-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const origin = await new Origin().start();
    t.after(() => origin.close());
    const port = await freePort();
    const dbPath = join(dir, 'edgepurge.db');
    const base = baseConfig(origin.url);
    // A webhook nobody answers (connection refused): its deliveries stay pending in the outbox, and move too.
    const accounts = base.accounts!.map((a) => (a.appId === ACME.appId ? { ...a, webhooks: [{ url: 'http://127.0.0.1:9/hook', secret: 'whsec-0123456789abcdef' }] } : a));
    const input: ConfigInput = { ...base, accounts, webhookDelivery: { backoff: { baseMs: 60_000 } }, server: { listen: `127.0.0.1:${port}` }, nodes: [{ ...NODE, listen: '127.0.0.1:0', controlPlane: `http://127.0.0.1:${port}` }] };

    // 1. History on SQLite, made through the API and applied by a real edge.
    const sqlite = new SqliteTaskStore({ path: dbPath });
    await sqlite.start();
    const cp1 = new ControlPlane({ config: parseConfig({ ...input, store: { driver: 'sqlite', path: dbPath } }), store: sqlite, clock: systemClock, logger: silentLogger, heartbeatMs: 200 });
    await cp1.start();
    let cp1Closed = false;
    t.after(async () => {
      if (cp1Closed) return;
      await cp1.close();
      await sqlite.close();
    });
    const edge = await startEdgeNode(parseConfig(input), NODE.id, silentLogger);
    t.after(() => edge.close());
    await until('edge streaming', () => edge.agent.connected && edge.proxy.leaseFresh());
    assert.equal((await edgeGet(edge.port, ACME.host, '/kept.html')).xcache, 'MISS');
    const teo = teoClient(`127.0.0.1:${port}`, ACME.secretId, ACME.secretKey);
    const jobs: string[] = [];
    for (let i = 0; i < 12; i++) {
      const { JobId } = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: i % 2 ? 'delete' : 'invalidate', Targets: [`http://${ACME.host}/p${i}.html`, `http://${ACME.host2}/p${i}.html`] });
      jobs.push(JobId);
    }
    jobs.push((await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: [`http://${ACME.host}/dir/`] })).JobId);
    jobs.push((await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_host', Targets: [ACME.host2] })).JobId);
    jobs.push((await teo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/pre.html`] })).JobId);
    await until('every task settled on SQLite', async () => {
      const tasks = (await describeAll(`127.0.0.1:${port}`)) as Array<{ Status: string }>;
      return tasks.length === 12 * 2 + 3 && tasks.every((x) => x.Status === 'success');
    });
    await until('the edge acked the log end', async () => (await sqlite.nodeProgress())[0]?.ackedSeq === (await sqlite.lastSeq()));
    assert.equal((await edgeGet(edge.port, ACME.host, '/kept.html')).xcache, 'HIT');
    const before = {
      tasks: await describeAll(`127.0.0.1:${port}`),
      quota: await teo.DescribeContentQuota({ ZoneId: ACME.zoneId }),
      reports: await Promise.all(jobs.map((j) => sqlite.jobNodeReports(ACME.appId, j))),
      prefetchResults: await sqlite.prefetchResults((await Promise.all(jobs.map((j) => sqlite.jobTasks(ACME.appId, j)))).flat().map((x) => x.id)),
      records: await sqlite.listRefreshRecords({ appId: ACME.appId, offset: 0, limit: 100 }),
      progress: await sqlite.nodeProgress(),
      lastSeq: await sqlite.lastSeq(),
      applied: edge.proxy.appliedSeq,
      deliveries: (await sqlite.webhookDeliveries!({ limit: 100 })).map((d) => [d.eventId, d.jobId, d.url, d.event, d.createdAt]),
    };
    assert.equal(before.deliveries.length, jobs.length, 'one pending delivery per settled job');
    assert.ok(before.reports.flat().length > 0, 'the node reported what it executed');
    assert.deepEqual(before.prefetchResults.map((r) => [r.nodeId, r.ok]), [[NODE.id, true]], 'the node reported fetching the prefetch');
    cp1Closed = true;
    await cp1.close();
    await sqlite.close();

    // 2. The command, as an operator runs it.
    const moved = await cli(['store', 'migrate', '--from', `sqlite:${dbPath}`, '--to', url, '--schema', 'moved', '--batch', '7']);
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stdout, /tasks\s+27\b/);
    assert.match(moved.stdout, new RegExp(`last seq\\s+${before.lastSeq}\\b`));
    // Again: the target holds data now.
    const again = await cli(['store', 'migrate', '--from', `sqlite:${dbPath}`, '--to', url, '--schema', 'moved']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not empty .*--replace/);

    // 3. A control plane on PostgreSQL, same address: the same answers, and the node resumes.
    const pgStore = new PostgresTaskStore({ url, schema: 'moved', pool: { max: 4 } });
    await pgStore.start();
    const cp2 = new ControlPlane({ config: parseConfig({ ...input, store: { driver: 'postgres', url, schema: 'moved' } }), store: pgStore, clock: systemClock, logger: silentLogger, heartbeatMs: 200 });
    await cp2.start();
    t.after(async () => {
      await cp2.close();
      await pgStore.close();
    });
    assert.deepEqual(await describeAll(`127.0.0.1:${port}`), before.tasks);
    assert.deepEqual(await teo.DescribeContentQuota({ ZoneId: ACME.zoneId }).then(({ RequestId: _, ...q }) => q), (({ RequestId: _, ...q }) => q)(before.quota));
    assert.deepEqual(await Promise.all(jobs.map((j) => pgStore.jobNodeReports(ACME.appId, j))), before.reports);
    assert.deepEqual(await pgStore.prefetchResults(before.prefetchResults.map((r) => r.taskId)), before.prefetchResults, 'prefetch results moved');
    assert.deepEqual(await pgStore.listRefreshRecords({ appId: ACME.appId, offset: 0, limit: 100 }), before.records);
    assert.equal(await pgStore.lastSeq(), before.lastSeq);
    assert.deepEqual((await pgStore.webhookDeliveries({ limit: 100 })).map((d) => [d.eventId, d.jobId, d.url, d.event, d.createdAt]), before.deliveries, 'the webhook outbox moved, in order');
    await until('edge streaming from PostgreSQL', () => edge.agent.connected && edge.proxy.leaseFresh(), 10_000);
    assert.equal(edge.proxy.appliedSeq, before.applied, 'resumed from its applied seq, not reset');
    assert.equal((await edgeGet(edge.port, ACME.host, '/kept.html')).xcache, 'HIT', 'the cache was kept');
    origin.bump(ACME.host, '/kept.html');
    const { JobId } = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/kept.html`] });
    await until('the new purge succeeds on PostgreSQL', async () => {
      const { Tasks } = await teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [JobId] }] });
      return Tasks[0]?.Status === 'success';
    });
    assert.equal(edge.proxy.appliedSeq, before.lastSeq + 1, 'the log continues after the moved seqs');
    assert.equal((await edgeGet(edge.port, ACME.host, '/kept.html')).body, origin.body(ACME.host, '/kept.html'));
    const progress = await pgStore.nodeProgress();
    assert.ok(progress[0]!.ackedSeq > before.progress[0]!.ackedSeq);
  });

  it('--replace empties a target that holds data, in the same transaction', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'edgepurge-migrate-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const dbPath = join(dir, 'edgepurge.db');
    const src = new SqliteTaskStore({ path: dbPath });
    await src.start();
    await createJobs(src, 'src', 5);
    await src.ackNode('n1', 3, 1000);
    await src.close();
    // The target has other history: a store used before.
    const target = new PostgresTaskStore({ url, schema: 'replaced', pool: { max: 2 } });
    await target.start();
    await createJobs(target, 'old', 9);
    await target.close();

    const refused = await cli(['store', 'migrate', '--from', `sqlite:${dbPath}`, '--to', url, '--schema', 'replaced']);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    const replaced = await cli(['store', 'migrate', '--from', `sqlite:${dbPath}`, '--to', url, '--schema', 'replaced', '--replace']);
    assert.equal(replaced.code, 0, replaced.stderr);
    const after = new PostgresTaskStore({ url, schema: 'replaced', pool: { max: 2 } });
    await after.start();
    t.after(() => after.close());
    const { total, tasks } = await after.listTasks({ appId: ACME.appId, offset: 0, limit: 100 });
    assert.equal(total, 5);
    assert.ok(tasks.every((x) => x.jobId.startsWith('src')));
    assert.equal(await after.lastSeq(), 5);
    // The source was closed with its jobs' host rows still waiting (schema v11): the move wrote them first.
    const records = await after.listRefreshRecords({ appId: ACME.appId, host: ACME.host, offset: 0, limit: 100 });
    assert.deepEqual(records.records.map((r) => r.job.jobId).sort(), ['src0', 'src1', 'src2', 'src3', 'src4']);
    assert.deepEqual((await after.nodeProgress()).map((p) => [p.nodeId, p.ackedSeq]), [['n1', 3]]);
    // A job created after the move gets the next seq and a new task id.
    const { tasks: [made] } = await after.createJob(newJob('next'), { quotaType: 'purge_url', day: '2026-01-01', amount: 1, daily: 100 });
    assert.equal(made!.seq, 6);
    assert.ok(made!.id > Math.max(...tasks.map((x) => x.id)));
  });

  it('usage errors name the option', async () => {
    for (const [args, message] of [
      [['store', 'migrate', '--to', 'postgres://x@127.0.0.1/db'], /needs --from/],
      [['store', 'migrate', '--from', './x.db', '--to', 'postgres://x@127.0.0.1/db'], /--from takes sqlite:PATH/],
      [['store', 'migrate', '--from', 'sqlite:./x.db', '--to', 'mysql://x'], /--to takes a postgres:\/\/ URL/],
      [['store', 'migrate', '--from', 'sqlite:./x.db', '--to', 'postgres://x@127.0.0.1/db', '--schema', 'Bad-Name'], /--schema/],
      [['store', 'migrate', '--from', 'sqlite:./x.db', '--to', 'postgres://x@127.0.0.1/db', '--batch', '0'], /--batch/],
    ] as const) {
      const r = await cli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message);
    }
    const missing = await cli(['store', 'migrate', '--from', 'sqlite:/nonexistent/edgepurge.db', '--to', url]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no SQLite store at/);
  });
});

const newJob = (jobId: string) => ({
  jobId, appId: ACME.appId, zoneId: ACME.zoneId, type: 'purge_url' as const, method: 'invalidate' as const, createdAt: Date.UTC(2026, 0, 1), secretId: ACME.secretId, clientIp: '::1', source: 'teo' as const,
  tasks: [{ target: `http://${ACME.host}/${jobId}`, hosts: [ACME.host], status: 'processing' as const, fanOut: true }],
});

async function createJobs(store: TaskStore, prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await store.createJob(newJob(`${prefix}${i}`), { quotaType: 'purge_url', day: '2026-01-01', amount: 1, daily: 100 });
}
