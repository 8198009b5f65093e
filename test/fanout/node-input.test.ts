// What an edge node may send the control plane (hardening issue, findings 1 and 2): its results count
// only for prefetches streamed to it, its acks only up to what it was sent, and every malformed input
// to /edge/v1/ is refused with a JSON 400/401/404/405/413 before anything is written.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { EdgeAgent, type EdgeTarget, type PrefetchOutcome } from '../../src/fanout/edge-agent.ts';
import type { WireEntry } from '../../src/fanout/wire.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { ACME, baseConfig, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { teoClient } from '../helpers/sdk.ts';
import { RawNode, until } from './raw-node.ts';

const NODES = [
  { id: 'edge-a', listen: '127.0.0.1:1', token: 'token-edge-a-0123456789' },
  { id: 'edge-b', listen: '127.0.0.1:2', token: 'token-edge-b-0123456789', hosts: [ACME.host2] },
];
type NodeId = 'edge-a' | 'edge-b';
const tokenOf = (id: NodeId) => NODES.find((n) => n.id === id)!.token;

async function setup(t: TestContext): Promise<TestServer> {
  return startControlPlane(t, { ...baseConfig(), nodes: NODES, fanout: { leaseMs: 60_000, taskTimeoutMs: 60_000 } }, { heartbeatMs: 50 });
}

const auth = (id: NodeId) => ({ Authorization: `Bearer ${tokenOf(id)}`, 'X-Edge-Node': id });
const rawNode = (server: TestServer, id: NodeId) => new RawNode(server.url, id, tokenOf(id));

async function taskOf(server: TestServer, appId: number, jobId: string) {
  const tasks = await server.store.jobTasks(appId, jobId);
  assert.equal(tasks.length, 1);
  return tasks[0]!;
}

/** edge-a (every host) and edge-b (ACME.host2) streaming, each holding a lease, and an SDK client per tenant. */
async function twoStreamingNodes(t: TestContext) {
  const server = await setup(t);
  const a = rawNode(server, 'edge-a');
  const b = rawNode(server, 'edge-b');
  await a.stream(t);
  await b.stream(t);
  // Both hold a lease, so neither is fenced and nothing settles behind the test's back.
  assert.equal((await a.ack({ seq: a.seenSeq() })).status, 200);
  assert.equal((await b.ack({ seq: b.seenSeq() })).status, 200);
  const acme = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const globex = teoClient(server.endpoint, GLOBEX.secretId, GLOBEX.secretKey);
  return { server, a, b, acme, globex };
}

test("a node's results are ignored for tasks it was never streamed: other hosts, other tenants, purges and ids not yet created", async (t) => {
  const { server, a, b, acme, globex } = await twoStreamingNodes(t);
  const onA = await taskOf(server, ACME.appId, (await acme.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/only-a.jpg`] })).JobId);
  const foreign = await taskOf(server, GLOBEX.appId, (await globex.CreatePrefetchTask({ ZoneId: GLOBEX.zoneId, Targets: [`http://${GLOBEX.host}/g.jpg`] })).JobId);
  const purge = await taskOf(server, ACME.appId, (await acme.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host2}/p.jpg`] })).JobId);
  const shared = await taskOf(server, ACME.appId, (await acme.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host2}/both.jpg`] })).JobId);
  await until('edge-b streamed the purge and the shared prefetch', () => b.entries().length === 2);
  assert.deepEqual(b.entries().map((e) => e.taskId), [purge.id, shared.id], 'edge-b is sent only entries for its host');

  const next = shared.id + 1;
  const fail = (taskId: number) => ({ taskId, ok: false, failType: 'originPullFailed', failMessage: 'forged' });
  const r = await b.ack({ seq: b.seenSeq(), results: [fail(onA.id), fail(foreign.id), fail(purge.id), fail(next), fail(next + 1000)] });
  assert.equal(r.status, 200, 'a result it may not send does not cost the node its ack or lease');
  assert.deepEqual(r.json.ignored, [onA.id, foreign.id, purge.id, next, next + 1000].map((taskId) => ({ taskId, reason: 'unexpected' })));
  await new Promise((r) => setTimeout(r, 150)); // a few settle passes
  assert.equal((await taskOf(server, ACME.appId, onA.jobId)).status, 'processing', "another host's prefetch is not failed");
  assert.equal((await taskOf(server, GLOBEX.appId, foreign.jobId)).status, 'processing', "another tenant's prefetch is not failed");

  // The id the forged result named, created afterwards, is not failed in advance.
  const later = await taskOf(server, ACME.appId, (await acme.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host2}/later.jpg`] })).JobId);
  assert.equal(later.id, next, 'task ids are sequential, so the forged result named this very task');
  await until('both nodes streamed it', () => a.entries().some((e) => e.taskId === later.id) && b.entries().some((e) => e.taskId === later.id));
  assert.equal((await a.ack({ seq: a.seenSeq(), results: [{ taskId: later.id, ok: true }] })).json.ignored, undefined);
  assert.equal((await b.ack({ seq: b.seenSeq(), results: [{ taskId: later.id, ok: true }] })).json.ignored, undefined);
  await until('the later prefetch succeeds', async () => (await taskOf(server, ACME.appId, later.jobId)).status === 'success');

  // A result for a prefetch it was streamed counts; a second answer for it does not.
  const own = await b.ack({ seq: b.seenSeq(), results: [fail(shared.id), { taskId: shared.id, ok: true }] });
  assert.deepEqual(own.json.ignored, [{ taskId: shared.id, reason: 'duplicate' }]);
  await until('the shared prefetch fails', async () => (await taskOf(server, ACME.appId, shared.jobId)).status === 'failed');
  assert.match((await taskOf(server, ACME.appId, shared.jobId)).failMessage ?? '', /^edge-b: forged$/);
});

/** A job's per-node progress as GET /admin/v1/jobs/JOBID shows it. */
async function adminNodes(server: TestServer, jobId: string): Promise<Array<Record<string, unknown>>> {
  const auth = Buffer.from(`${ACME.secretId}:${ACME.secretKey}`).toString('base64');
  const res = await fetch(`${server.url}/admin/v1/jobs/${jobId}`, { headers: { Authorization: `Basic ${auth}` } });
  assert.equal(res.status, 200);
  const job = (await res.json()) as { Tasks: Array<{ Nodes: Array<Record<string, unknown>> }> };
  return job.Tasks[0]!.Nodes;
}

test("a node's execution reports are recorded only for purge entries streamed to it, up to its ack, once", async (t) => {
  const { server, a, b, acme, globex } = await twoStreamingNodes(t);
  const onA = await taskOf(server, ACME.appId, (await acme.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/a.jpg`] })).JobId);
  const foreign = await taskOf(server, GLOBEX.appId, (await globex.CreatePurgeTask({ ZoneId: GLOBEX.zoneId, Type: 'purge_url', Targets: [`http://${GLOBEX.host}/g.jpg`] })).JobId);
  const shared = await taskOf(server, ACME.appId, (await acme.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Method: 'invalidate', Targets: [`http://${ACME.host2}/d/`] })).JobId);
  const prefetch = await taskOf(server, ACME.appId, (await acme.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host2}/p.jpg`] })).JobId);
  await until('streamed', () => a.entries().length === 4 && b.entries().length === 2);
  const report = (task: { id: number; seq: number | null }, over: Record<string, unknown> = {}) => ({ seq: task.seq!, taskId: task.id, executedAs: 'delete', matched: 7, ...over });
  const never = { id: prefetch.id + 1000, seq: prefetch.seq! + 1000 };

  const r = await b.ack({
    seq: b.seenSeq(),
    driver: 'varnish',
    reports: [
      report(onA), // another host's entry, not streamed to edge-b
      report(foreign), // another tenant's
      report(prefetch), // a prefetch: its outcome is a result, not a report
      report({ id: onA.id, seq: shared.seq }), // a seq it was sent, under another task's id
      report(never), // nothing yet
      report(shared, { note: 'Varnish bans are hard' }),
    ],
  });
  assert.equal(r.status, 200, 'a report it may not send does not cost the node its ack or lease');
  assert.deepEqual(r.json.ignoredReports, [
    { seq: onA.seq, taskId: onA.id, reason: 'unexpected' },
    { seq: foreign.seq, taskId: foreign.id, reason: 'unexpected' },
    { seq: prefetch.seq, taskId: prefetch.id, reason: 'unexpected' },
    { seq: shared.seq, taskId: onA.id, reason: 'unexpected' },
    { seq: never.seq, taskId: never.id, reason: 'unexpected' },
  ]);
  assert.deepEqual(await server.store.jobNodeReports(GLOBEX.appId, foreign.jobId), [], "nothing was written onto another tenant's task");
  assert.deepEqual(await server.store.jobNodeReports(ACME.appId, onA.jobId), []);

  // The first report stands: a second one (a retried ack, or a lie) is `duplicate` and changes nothing.
  const again = await b.ack({ seq: b.seenSeq(), driver: 'varnish', reports: [report(shared, { executedAs: 'invalidate', matched: 0 })] });
  assert.deepEqual(again.json.ignoredReports, [{ seq: shared.seq, taskId: shared.id, reason: 'duplicate' }]);

  // edge-a reports on the shared entry only with an ack that applies it.
  const early = await a.ack({ seq: shared.seq! - 1, reports: [report(shared, { executedAs: 'invalidate', matched: null })] });
  assert.deepEqual(early.json.ignoredReports, [{ seq: shared.seq, taskId: shared.id, reason: 'not_applied' }]);
  assert.equal((await a.ack({ seq: a.seenSeq(), reports: [report(shared, { executedAs: 'invalidate', matched: null })] })).json.ignoredReports, undefined);

  const nodes = await adminNodes(server, shared.jobId);
  const view = Object.fromEntries(nodes.map(({ NodeId, Driver, State, ExecutedAs, Matched, Note }) => [NodeId, { Driver, State, ExecutedAs, Matched, Note }]));
  assert.deepEqual(view, {
    'edge-a': { Driver: 'builtin', State: 'applied', ExecutedAs: 'invalidate', Matched: null, Note: undefined },
    'edge-b': { Driver: 'varnish', State: 'applied', ExecutedAs: 'delete', Matched: 7, Note: 'Varnish bans are hard' },
  });
  for (const n of nodes) assert.ok(typeof n.AppliedAt === 'string' && Math.abs(Date.parse(n.AppliedAt) - Date.now()) < 60_000, String(n.AppliedAt));
  const unreported = await adminNodes(server, onA.jobId);
  assert.deepEqual(unreported.map(({ NodeId, Driver, ExecutedAs, Matched, AppliedAt }) => ({ NodeId, Driver, ExecutedAs, Matched, AppliedAt })), [
    { NodeId: 'edge-a', Driver: 'builtin', ExecutedAs: null, Matched: null, AppliedAt: null },
  ], 'no report: nothing pretended, the configured driver shown');

  // An entry is remembered until one ack after the ack that applied it; a report later than that is not taken.
  assert.equal((await a.ack({ seq: a.seenSeq() })).status, 200);
  const late = await a.ack({ seq: a.seenSeq(), reports: [report(onA)] });
  assert.deepEqual(late.json.ignoredReports, [{ seq: onA.seq, taskId: onA.id, reason: 'unexpected' }]);
  assert.equal(server.controlPlane.hub.memory().awaitedReports, 0, 'nothing left waiting for a report');
});

test('an ack counts only up to what was streamed to the node', async (t) => {
  const server = await setup(t);
  const a = rawNode(server, 'edge-a');
  // A lease first: a node that never acked is fenced, and the task would succeed without it.
  assert.equal((await a.ack({ seq: 0 })).status, 200);
  const acme = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const job = await acme.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/x.jpg`] });
  const task = await taskOf(server, ACME.appId, job.JobId);
  // No stream yet: claiming the whole log renews the lease but applies nothing.
  const r = await a.ack({ seq: task.seq! + 1000 });
  assert.equal(r.status, 200);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal((await taskOf(server, ACME.appId, job.JobId)).status, 'processing');
  assert.deepEqual(
    server.controlPlane.hub.nodeViews(task).find((v) => v.nodeId === 'edge-a'),
    { nodeId: 'edge-a', driver: 'builtin', ackedSeq: 0, seenAt: (await server.store.nodeProgress()).find((p) => p.nodeId === 'edge-a')?.seenAt ?? null, state: 'pending' },
  );
  // Once the stream has taken it past the entry, the same ack applies it.
  await a.stream(t);
  assert.equal((await a.ack({ seq: task.seq! + 1000 })).status, 200);
  await until('success', async () => (await taskOf(server, ACME.appId, job.JobId)).status === 'success');
  assert.equal((await server.store.nodeProgress()).find((p) => p.nodeId === 'edge-a')?.ackedSeq, await server.store.lastSeq(), 'capped at the log end');
});

test('a prefetch result sent after a control-plane restart still counts if the node had acked the prefetch before it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-restart-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = { ...baseConfig(), nodes: NODES, fanout: { leaseMs: 60_000, taskTimeoutMs: 60_000 } };
  const first = await startControlPlane(t, config, { dir, heartbeatMs: 50 });
  const a = rawNode(first, 'edge-a');
  await a.stream(t);
  const acme = teoClient(first.endpoint, ACME.secretId, ACME.secretKey);
  const job = await acme.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/slow.jpg`] });
  await until('streamed', () => a.entries().length === 1);
  assert.equal((await a.ack({ seq: a.seenSeq() })).status, 200, 'dispatched: acked, no outcome yet');
  await first.close();

  const second = await startControlPlane(t, config, { dir, heartbeatMs: 50 });
  const again = rawNode(second, 'edge-a');
  const r = await again.ack({ seq: a.seenSeq(), results: [{ taskId: a.entries()[0]!.taskId, ok: false, failType: 'originPullFailed', failMessage: 'origin returned 503' }] });
  assert.equal(r.json.ignored, undefined);
  await until('failed', async () => (await taskOf(second, ACME.appId, job.JobId)).status === 'failed');
});

test('an invalid ack body is refused with a JSON 400 before anything is saved', async (t) => {
  const server = await setup(t);
  const a = rawNode(server, 'edge-a');
  await a.stream(t);
  const result = { taskId: 1, ok: false, failType: 'originPullFailed', failMessage: 'x' };
  const report = { seq: 1, taskId: 1, executedAs: 'delete', matched: 1, note: 'n' };
  const bad: Array<[string, unknown]> = [
    ['a null result (the issue: 500 after saving the seq)', { seq: 0, results: [null] }],
    ['not JSON', '{"seq":'],
    ['no seq', { results: [] }],
    ['a negative seq', { seq: -1 }],
    ['a fractional seq', { seq: 1.5 }],
    ['a seq as a string', { seq: '1' }],
    ['a seq beyond 2^53', { seq: 2 ** 53 }],
    ['results not an array', { seq: 0, results: {} }],
    ['ok not a boolean', { seq: 0, results: [{ taskId: 1, ok: 'yes' }] }],
    ['a task id of 0', { seq: 0, results: [{ ...result, taskId: 0 }] }],
    ['an unknown FailType', { seq: 0, results: [{ ...result, failType: 'myOwnType' }] }],
    ['an overlong FailMessage', { seq: 0, results: [{ ...result, failMessage: 'x'.repeat(501) }] }],
    ['more than 1,000 results', { seq: 0, results: Array.from({ length: 1001 }, (_, i) => ({ taskId: i + 1, ok: true })) }],
    ['a report with an unknown executedAs', { seq: 0, reports: [{ ...report, executedAs: 'ban' }] }],
    ['a report with a negative matched', { seq: 0, reports: [{ ...report, matched: -1 }] }],
    ['a report with a fractional matched', { seq: 0, reports: [{ ...report, matched: 1.5 }] }],
    ['a report with seq 0', { seq: 0, reports: [{ ...report, seq: 0 }] }],
    ['a report without a task id', { seq: 0, reports: [{ seq: 1, executedAs: 'delete' }] }],
    ['a report with an overlong note', { seq: 0, reports: [{ ...report, note: 'n'.repeat(301) }] }],
    ['more than 1,000 reports', { seq: 0, reports: Array.from({ length: 1001 }, (_, i) => ({ ...report, seq: i + 1 })) }],
    ['a driver name that is not a lower-case word', { seq: 0, driver: 'My Driver' }],
    ['a driver name of 33 characters', { seq: 0, driver: 'd'.repeat(33) }],
    ['an array body', [0]],
    ['null', null],
  ];
  for (const [what, body] of bad) {
    const r = await a.ack(body);
    assert.equal(r.status, 400, what);
    assert.equal(typeof r.json.error, 'string', what);
  }
  const nullResult = await a.ack({ seq: 0, results: [null] });
  assert.match(nullResult.json.error ?? '', /results\[0\]/, 'the answer says which part is wrong');
  assert.deepEqual(await server.store.nodeProgress(), [], 'no refused ack was recorded, not even its seq or lease');
  assert.equal((await a.ack({ seq: 0, results: [] })).status, 200, 'a valid ack still goes through');
  const newer = await a.ack({ seq: 0, driver: 'varnish', reports: [{ ...report, since: 'a newer agent' }], capabilities: ['x'] });
  assert.equal(newer.status, 200, 'unknown keys are ignored, so a newer agent is not cut off');
  assert.deepEqual(newer.json.ignoredReports, [{ seq: 1, taskId: 1, reason: 'unexpected' }]);
});

test('every /edge/ route refuses bad input with a JSON error: after, X-Edge-Node, bearer token, method, size', async (t) => {
  const server = await setup(t);
  const call = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${server.url}${path}`, init);
    const text = await res.text();
    assert.match(res.headers.get('content-type') ?? '', /application\/json/, `${path}: ${text}`);
    return { status: res.status, error: (JSON.parse(text) as { error?: string }).error, headers: res.headers };
  };
  for (const after of ['', '1e3', '0x10', '-2', '1.5', 'abc', ' 1', '99999999999999999']) {
    const r = await call(`/edge/v1/stream?after=${encodeURIComponent(after)}`, { headers: auth('edge-a') });
    assert.equal(r.status, 400, `after=${after}`);
    assert.match(r.error ?? '', /after/);
  }
  assert.equal((await call('/edge/v1/stream?after=1&after=2', { headers: auth('edge-a') })).status, 400, 'after twice');

  const badAuth: Array<[string, Record<string, string>]> = [
    ['no headers', {}],
    ['no node id', { Authorization: `Bearer ${tokenOf('edge-a')}` }],
    ['an unknown node', { ...auth('edge-a'), 'X-Edge-Node': 'edge-z' }],
    ["another node's token", { ...auth('edge-a'), Authorization: `Bearer ${tokenOf('edge-b')}` }],
    ['a token one character short', { ...auth('edge-a'), Authorization: `Bearer ${tokenOf('edge-a').slice(0, -1)}` }],
    ['a token one character long', { ...auth('edge-a'), Authorization: `Bearer ${tokenOf('edge-a')}x` }],
    ['another scheme', { ...auth('edge-a'), Authorization: `Basic ${tokenOf('edge-a')}` }],
    ['an empty bearer', { ...auth('edge-a'), Authorization: 'Bearer ' }],
  ];
  for (const [what, headers] of badAuth) {
    for (const [path, method] of [['/edge/v1/stream', 'GET'], ['/edge/v1/ack', 'POST']] as const) {
      const r = await call(path, { method, headers, ...(method === 'POST' ? { body: '{"seq":0}' } : {}) });
      assert.equal(r.status, 401, `${what} on ${path}`);
    }
  }
  assert.deepEqual(await server.store.nodeProgress(), [], 'no refused ack was recorded');

  const wrongMethod = await call('/edge/v1/ack', { headers: auth('edge-a') });
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get('allow'), 'POST');
  assert.equal((await call('/edge/v1/stream', { method: 'POST', headers: auth('edge-a'), body: '{}' })).status, 405);
  for (const path of ['/edge/v1/nothing', '/edge/v1/__proto__', '/edge/v1/constructor']) assert.equal((await call(path, { headers: auth('edge-a') })).status, 404, path);
  const huge = await call('/edge/v1/ack', { method: 'POST', headers: auth('edge-a'), body: JSON.stringify({ seq: 0, pad: 'x'.repeat(1024 * 1024) }) });
  assert.equal(huge.status, 413);
  assert.deepEqual(await server.store.nodeProgress(), []);
});

class PrefetchOnlyEdge implements EdgeTarget {
  readonly driver = 'fake';
  appliedSeq = 0;
  leaseUntil = 0;
  answer: PrefetchOutcome = { ok: true };
  apply(e: WireEntry): void {
    this.appliedSeq = e.seq;
  }
  advanceTo(seq: number): void {
    this.appliedSeq = Math.max(this.appliedSeq, seq);
  }
  async prefetch(): Promise<PrefetchOutcome> {
    return this.answer;
  }
  dropAll(seq: number): void {
    this.appliedSeq = seq;
  }
  renewLease(until: number): void {
    this.leaseUntil = until;
  }
}

test('an agent reports a FailType the API does not know as taskFailed, and an overlong message cut to the wire limit', async (t) => {
  const server = await setup(t);
  const edge = new PrefetchOnlyEdge();
  edge.answer = { ok: false, failType: 'dnsLookupFailed', failMessage: 'y'.repeat(2000) };
  const agent = new EdgeAgent({ controlPlane: server.url, nodeId: 'edge-a', token: tokenOf('edge-a'), target: edge, clock: systemClock, logger: silentLogger });
  agent.start();
  t.after(() => agent.close());
  await until('lease', () => edge.leaseUntil > 0);
  const acme = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const job = await acme.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/z.jpg`] });
  await until('failed', async () => (await taskOf(server, ACME.appId, job.JobId)).status === 'failed');
  const task = await taskOf(server, ACME.appId, job.JobId);
  assert.equal(task.failType, 'taskFailed');
  assert.equal(task.failMessage, `edge-a: ${'y'.repeat(500)}`);
});
