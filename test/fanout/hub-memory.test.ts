// The hub's in-memory bookkeeping stays bounded (hardening issue, finding 3): a FanoutHub on its own
// HTTP server with a manual clock, prefetch tasks written straight into a SQLite store.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { FanoutHub } from '../../src/fanout/fanout-hub.ts';
import { Directory } from '../../src/purge/directory.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { SqliteTaskStore } from '../../src/store/sqlite/sqlite-task-store.ts';
import { ACME, baseConfig } from '../helpers/control-plane.ts';
import { RawNode, serveHub, until } from './raw-node.ts';

const NODE = { id: 'edge-a', listen: '127.0.0.1:1', token: 'token-edge-a-0123456789' };
const TIMEOUT_MS = 60_000;

async function setup(t: TestContext, maxSettledOutcomes: number, maxUnreported?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-hub-'));
  const config = parseConfig({ ...baseConfig(), nodes: [NODE], fanout: { leaseMs: 60_000, taskTimeoutMs: TIMEOUT_MS } });
  const store = new SqliteTaskStore({ path: join(dir, 'hub.db') });
  await store.start();
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const hub = new FanoutHub({ config, store, directory: new Directory(config), clock, logger: silentLogger, heartbeatMs: 20, maxSettledOutcomes, ...(maxUnreported === undefined ? {} : { maxUnreported }) });
  await hub.start();
  const url = await serveHub(t, hub, async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let jobs = 0;
  /** One job of `n` tasks of `type` on www.acme.com, fanned out; returns the task ids. */
  const fanOut = async (type: 'prefetch_url' | 'purge_url', n: number): Promise<number[]> => {
    const { tasks } = await store.createJob(
      {
        jobId: `job${++jobs}`,
        appId: ACME.appId,
        zoneId: ACME.zoneId,
        type,
        method: 'invalidate',
        createdAt: clock.now(),
        secretId: ACME.secretId,
        clientIp: '127.0.0.1',
        source: 'teo',
        tasks: Array.from({ length: n }, (_, i) => ({ target: `http://${ACME.host}/${jobs}/${i}.jpg`, hosts: [ACME.host], status: 'processing' as const, fanOut: true })),
      },
      { quotaType: type, day: '2026-01-01', amount: n, daily: 1_000_000 },
    );
    hub.notify(await store.lastSeq());
    return tasks.map((x) => x.id);
  };
  const prefetch = (n: number) => fanOut('prefetch_url', n);
  return { hub, store, clock, prefetch, fanOut, node: new RawNode(url, NODE.id, NODE.token) };
}

test('outcomes of settled prefetches are kept up to a count and for twice the deadline, not for every prefetch ever made', async (t) => {
  const { hub, store, clock, prefetch, node } = await setup(t, 3);
  await node.ack({ seq: 0 });
  await node.stream(t);
  const ids = await prefetch(5);
  await until('streamed', () => node.entries().length === 5);
  const r = await node.ack({ seq: node.seenSeq(), results: ids.map((taskId) => ({ taskId, ok: false, failType: 'originPullFailed', failMessage: `no ${taskId}` })) });
  assert.equal(r.json.ignored, undefined);
  await until('all failed', async () => (await store.jobTasks(ACME.appId, 'job1')).every((x) => x.status === 'failed'));
  const { waitingStreams: _, ...held } = hub.memory();
  assert.deepEqual(held, { awaitedResults: 0, awaitedReports: 0, outcomes: 0, settledOutcomes: 3, nodes: 1, streams: 1, tailEntries: 5, queuedAcks: 0, ackChannels: 0 });
  // An evicted outcome still shows the node that failed the task, from the task's own FailMessage.
  for (const task of await store.jobTasks(ACME.appId, 'job1')) {
    assert.deepEqual(
      hub.nodeViews(task).map((v) => [v.state, v.failMessage]),
      [['failed', `edge-a: no ${task.id}`]],
    );
  }
  clock.advance(2 * TIMEOUT_MS + 1);
  await node.ack({ seq: node.seenSeq() }); // keeps the lease: the node stays counted
  await until('old outcomes dropped', () => hub.memory().settledOutcomes === 0);
});

test('a prefetch result after the deadline is shown per node but changes no status, and none is waited for after twice the deadline', async (t) => {
  const { hub, store, clock, prefetch, node } = await setup(t, 10);
  await node.ack({ seq: 0 });
  await node.stream(t);
  await prefetch(4);
  await until('streamed', () => node.entries().length === 4);
  await node.ack({ seq: node.seenSeq() });
  assert.equal(hub.memory().awaitedResults, 4);
  clock.advance(TIMEOUT_MS + 1);
  await node.ack({ seq: node.seenSeq() });
  await until('timed out', async () => (await store.jobTasks(ACME.appId, 'job1')).every((x) => x.status === 'timeout'));
  const [first, second] = node.entries().map((e) => e.taskId);
  const late = await node.ack({ seq: node.seenSeq(), results: [{ taskId: first!, ok: false, failType: 'originPullFailed', failMessage: 'origin returned 503' }] });
  assert.equal(late.json.ignored, undefined);
  const task = (await store.jobTasks(ACME.appId, 'job1')).find((x) => x.id === first)!;
  assert.equal(task.status, 'timeout', 'a final status is final');
  assert.deepEqual(hub.nodeViews(task).map((v) => [v.state, v.failMessage]), [['failed', 'edge-a: origin returned 503']]);

  clock.advance(TIMEOUT_MS);
  await node.ack({ seq: node.seenSeq() });
  await until('no longer waited for', () => hub.memory().awaitedResults === 0);
  const tooLate = await node.ack({ seq: node.seenSeq(), results: [{ taskId: second!, ok: true }] });
  assert.deepEqual(tooLate.json.ignored, [{ taskId: second, reason: 'unexpected' }]);
});

test('an idle stream waits for the next purge with one waiter that it removes, not a reaction per heartbeat on a shared promise', async (t) => {
  const { hub, node } = await setup(t, 10);
  await node.ack({ seq: 0 });
  await node.stream(t);
  const other = new RawNode(node.url, NODE.id, NODE.token);
  await other.stream(t);
  // Each stream wakes every 20 ms (heartbeatMs) to look at the log: 25 times here.
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(hub.memory().waitingStreams <= 2, `waiters: ${hub.memory().waitingStreams}`);
  await hub.close();
  assert.equal(hub.memory().waitingStreams, 0);
});

test('purge entries awaiting a report are forgotten an ack after they were applied, and bounded for a node that never reports', async (t) => {
  const { hub, fanOut, node } = await setup(t, 10, 50);
  await node.ack({ seq: 0 });
  await node.stream(t);
  await fanOut('purge_url', 200);
  await until('streamed', () => node.entries().length === 200);
  assert.equal(hub.memory().awaitedReports, 50, 'an older agent that never reports holds at most maxUnreported');
  await node.ack({ seq: node.seenSeq() });
  assert.equal(hub.memory().awaitedReports, 50, 'kept for one more ack (a retried ack finds them duplicate)');
  await node.ack({ seq: node.seenSeq() });
  assert.equal(hub.memory().awaitedReports, 0);
});
