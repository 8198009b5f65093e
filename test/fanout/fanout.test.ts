// The fan-out protocol end to end over HTTP, with an in-memory EdgeTarget standing in for a cache:
// ordered delivery, acks → task status, catch-up after reconnect, reset past the retained log,
// fencing by lease, per-host routing, prefetch outcomes and deadlines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EdgeAgent, type EdgeTarget, type PrefetchOutcome } from '../../src/fanout/edge-agent.ts';
import type { ExecutionReport, WireEntry } from '../../src/fanout/wire.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { ACME, baseConfig, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { teoClient } from '../helpers/sdk.ts';

class FakeEdge implements EdgeTarget {
  readonly driver = 'fake';
  appliedSeq = 0;
  applied: WireEntry[] = [];
  drops: number[] = [];
  leaseUntil = 0;
  prefetchAnswer: PrefetchOutcome = { ok: true };
  apply(e: WireEntry): void {
    assert.ok(e.seq > this.appliedSeq, `entries arrive in order (${e.seq} after ${this.appliedSeq})`);
    this.applied.push(e);
    this.appliedSeq = e.seq;
  }
  advanceTo(seq: number): void {
    this.appliedSeq = Math.max(this.appliedSeq, seq);
  }
  async prefetch(): Promise<PrefetchOutcome> {
    return this.prefetchAnswer;
  }
  dropAll(seq: number): void {
    this.drops.push(seq);
    this.appliedSeq = seq;
  }
  renewLease(until: number): void {
    this.leaseUntil = until;
  }
}

/** A cache that executes entries later, all at once on release(), and hands its reports over like DriverTarget. */
class DeferredEdge implements EdgeTarget {
  readonly driver = 'deferred';
  appliedSeq = 0;
  leaseUntil = 0;
  #queued: WireEntry[] = [];
  #advance = 0;
  #done: ExecutionReport[] = [];
  get queued(): number {
    return this.#queued.length;
  }
  apply(e: WireEntry): void {
    this.#queued.push(e);
  }
  advanceTo(seq: number): void {
    if (this.#queued.length === 0) this.appliedSeq = Math.max(this.appliedSeq, seq);
    else this.#advance = Math.max(this.#advance, seq);
  }
  release(): void {
    for (const e of this.#queued) this.#done.push({ seq: e.seq, taskId: e.taskId, executedAs: 'delete', matched: 1 });
    this.appliedSeq = Math.max(this.appliedSeq, this.#advance, ...this.#queued.map((e) => e.seq));
    this.#queued = [];
  }
  takeReports(): ExecutionReport[] {
    const out = this.#done;
    this.#done = [];
    return out;
  }
  async prefetch(): Promise<PrefetchOutcome> {
    return { ok: true };
  }
  dropAll(seq: number): void {
    this.appliedSeq = seq;
  }
  renewLease(until: number): void {
    this.leaseUntil = until;
  }
}

const NODES = [
  { id: 'edge-a', listen: '127.0.0.1:1', token: 'token-edge-a-0123456789' },
  { id: 'edge-b', listen: '127.0.0.1:2', token: 'token-edge-b-0123456789', hosts: [ACME.host2] },
];

// The default lease is long enough that a loaded CI machine's pauses never lapse it: a test that wants a
// lapse passes its own.
async function setup(t: Parameters<typeof startControlPlane>[0], leaseMs = 5000, taskTimeoutMs = 60_000) {
  const server = await startControlPlane(t, { ...baseConfig(), nodes: NODES, fanout: { leaseMs, taskTimeoutMs } }, { heartbeatMs: 100 });
  return server;
}

function agent(t: { after(fn: () => unknown): void }, server: TestServer, id: string, target: EdgeTarget): EdgeAgent {
  const node = NODES.find((n) => n.id === id)!;
  const a = new EdgeAgent({ controlPlane: server.url, nodeId: id, token: node.token, target, clock: systemClock, logger: silentLogger, stallMs: 2000 });
  a.start();
  t.after(() => a.close());
  return a;
}

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function statuses(server: TestServer, jobId: string): Promise<string[]> {
  return (await server.store.jobTasks(ACME.appId, jobId)).map((t) => t.status);
}

test('a purge is processing until every responsible node acks it, then success; entries go only to nodes serving the host', async (t) => {
  const server = await setup(t);
  const a = new FakeEdge();
  const b = new FakeEdge();
  agent(t, server, 'edge-a', a);
  agent(t, server, 'edge-b', b);
  await until('both connected with leases', () => a.leaseUntil > 0 && b.leaseUntil > 0);
  const sdk = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const r1 = await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/a.jpg`] });
  const r2 = await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: [`http://${ACME.host2}/img/`], Method: 'delete' });
  await until('both jobs settle', async () => (await statuses(server, r1.JobId)).every((s) => s === 'success') && (await statuses(server, r2.JobId)).every((s) => s === 'success'));
  assert.deepEqual(a.applied.map((e) => e.target), [`http://${ACME.host}/a.jpg`, `http://${ACME.host2}/img/`]);
  assert.deepEqual(b.applied.map((e) => [e.type, e.method, e.target]), [['purge_prefix', 'delete', `http://${ACME.host2}/img/`]], 'edge-b serves only img.acme.com');
  assert.equal(b.appliedSeq, a.appliedSeq, 'heartbeats advance a node past entries for hosts it does not serve');
});

test('a node that stops acking keeps tasks processing until its lease runs out, then it is fenced and they succeed', async (t) => {
  const server = await setup(t, 1000);
  const a = new FakeEdge();
  const ag = agent(t, server, 'edge-a', a);
  await until('lease', () => a.leaseUntil > 0);
  await ag.close();
  const sdk = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const r = await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/x`] });
  assert.deepEqual(await statuses(server, r.JobId), ['processing']);
  const started = Date.now();
  await until('fenced → success', async () => (await statuses(server, r.JobId))[0] === 'success', 4000);
  assert.ok(Date.now() - started >= 300, 'not before the lease could have run out');
  const views = server.controlPlane.hub.nodeViews((await server.store.jobTasks(ACME.appId, r.JobId))[0]!);
  assert.equal(views.find((v) => v.nodeId === 'edge-a')?.state, 'fenced');
});

test('a reconnecting node catches up from its last applied seq, in order', async (t) => {
  const server = await setup(t);
  const a = new FakeEdge();
  let ag = agent(t, server, 'edge-a', a);
  await until('lease', () => a.leaseUntil > 0);
  const sdk = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/1`] });
  await until('first applied', () => a.applied.length === 1);
  await ag.close();
  for (let i = 2; i <= 4; i++) await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/${i}`] });
  ag = agent(t, server, 'edge-a', a);
  await until('caught up', () => a.applied.length === 4);
  assert.deepEqual(a.applied.map((e) => e.target.split('/').pop()), ['1', '2', '3', '4']);
  assert.deepEqual(a.drops, []);
});

test('more execution reports than one ack carries ride on the next acks, none lost; the ack never passes a report it has not sent', async (t) => {
  const server = await setup(t);
  const a = new DeferredEdge();
  const ag = agent(t, server, 'edge-a', a);
  await until('lease', () => a.leaseUntil > 0);
  const sdk = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const jobs: string[] = [];
  // 2,400 reports: three acks' worth. An ack that claimed every seq at once would lose the third batch (an
  // entry is remembered only until the ack after the one that applied it).
  for (const part of [0, 1, 2]) {
    const urls = Array.from({ length: 800 }, (_, i) => `http://${ACME.host}/many/${part}/${i}`);
    jobs.push((await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: urls })).JobId);
  }
  await until('all streamed', () => a.queued === 2400);
  a.release();
  ag.nudge();
  await until('every report recorded', async () => {
    const counts = await Promise.all(jobs.map((j) => server.store.jobNodeReports(ACME.appId, j)));
    return counts.every((r) => r.length === 800);
  });
  for (const j of jobs) {
    assert.deepEqual(new Set(await statuses(server, j)), new Set(['success']));
    const reports = await server.store.jobNodeReports(ACME.appId, j);
    assert.ok(reports.every((r) => r.driver === 'deferred' && r.executedAs === 'delete' && r.matched === 1 && r.nodeId === 'edge-a'));
  }
});

test('a node behind the retained log is told to empty its cache first', async (t) => {
  const server = await setup(t);
  const sdk = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  for (let i = 0; i < 3; i++) await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/${i}`] });
  await server.store.prune(Date.now() + 1000);
  const a = new FakeEdge();
  a.appliedSeq = 1; // it had applied seq 1 long ago; seq 2-3 are gone from the log
  agent(t, server, 'edge-a', a);
  await until('reset', () => a.drops.length === 1);
  assert.equal(a.drops[0], await server.store.lastSeq());
});

test('prefetch succeeds when every node fetched it and fails with originPullFailed when one could not', async (t) => {
  const server = await setup(t);
  const a = new FakeEdge();
  agent(t, server, 'edge-a', a);
  await until('lease', () => a.leaseUntil > 0);
  const sdk = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const ok = await sdk.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/p.jpg`] });
  await until('prefetch ok', async () => (await statuses(server, ok.JobId))[0] === 'success');
  a.prefetchAnswer = { ok: false, failType: 'originPullFailed', failMessage: 'origin returned 404' };
  const bad = await sdk.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/missing.jpg`] });
  await until('prefetch failed', async () => (await statuses(server, bad.JobId))[0] === 'failed');
  const r = await sdk.DescribePrefetchTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [bad.JobId] }] });
  assert.equal(r.Tasks[0].FailType, 'originPullFailed');
  assert.match(r.Tasks[0].FailMessage, /edge-a: origin returned 404/);
});

test('a node that acks but never applies a task makes it time out with the node named', async (t) => {
  const server = await setup(t, 60_000, 300);
  const stuck = new FakeEdge();
  // Holds a live lease but never gets past seq 0: acks keep coming, applied seq does not move.
  stuck.apply = () => {};
  stuck.advanceTo = () => {};
  agent(t, server, 'edge-a', stuck);
  // Leased before the purge: a node that never acked would be fenced, and the task would succeed without it.
  await until('lease', () => stuck.leaseUntil > 0);
  const sdk = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const r = await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/t`] });
  await until('timeout', async () => (await statuses(server, r.JobId))[0] === 'timeout', 4000);
  const task = (await server.store.jobTasks(ACME.appId, r.JobId))[0]!;
  assert.match(task.failMessage ?? '', /edge-a/);
});
