// Acks are committed in batches (FanoutHub #flushAcks): many nodes' acks and the tasks they complete in
// one durable write (TaskStore.ackNodes), answered only after it; a failed write answers none of them as
// recorded and moves nothing; each settled task is announced once.
import assert from 'node:assert/strict';
import fs, { mkdtempSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { FanoutHub } from '../../src/fanout/fanout-hub.ts';
import { Directory } from '../../src/purge/directory.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { SqliteTaskStore } from '../../src/store/sqlite/sqlite-task-store.ts';
import type { NodeAck, TaskStore, TaskUpdate, WebhookRouter } from '../../src/store/task-store.ts';
import { ACME, baseConfig } from '../helpers/control-plane.ts';
import { RawNode, serveHub, until } from './raw-node.ts';

const NODES = Array.from({ length: 20 }, (_, i) => ({ id: `edge-${i}`, listen: `127.0.0.1:${i + 1}`, token: `token-edge-${i}-0123456789` }));

async function setup(t: TestContext, o: { ackLingerMs: number; heartbeatMs?: number }) {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-ack-batch-'));
  const config = parseConfig({ ...baseConfig(), nodes: NODES, fanout: { leaseMs: 60_000, taskTimeoutMs: 60_000 } });
  const real = new SqliteTaskStore({ path: join(dir, 'hub.db') });
  await real.start();
  // The store the hub sees: counts batch writes, and can hold or fail them.
  const writes: Array<{ acks: readonly NodeAck[]; settled: readonly TaskUpdate[] }> = [];
  const control = { gate: undefined as Promise<void> | undefined, fail: false, readDelayMs: 0 };
  const store = new Proxy(real, {
    get(target, prop) {
      if (prop === 'ackNodes') {
        return async (acks: readonly NodeAck[], settled: readonly TaskUpdate[], at: number, webhooks?: WebhookRouter, committed?: () => void) => {
          await control.gate;
          if (control.fail) throw new Error('disk full');
          writes.push({ acks, settled });
          return target.ackNodes(acks, settled, at, webhooks, committed);
        };
      }
      if (prop === 'processingTasks') {
        // A slow read widens the window in which a settle pass and an ack batch could overlap.
        return async (...a: Parameters<TaskStore['processingTasks']>) => {
          const tasks = await target.processingTasks(...a);
          if (control.readDelayMs) await new Promise((r) => setTimeout(r, control.readDelayMs));
          return tasks;
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as TaskStore;
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const hub = new FanoutHub({ config, store, directory: new Directory(config), clock, logger: silentLogger, heartbeatMs: o.heartbeatMs ?? 60_000, ackLingerMs: o.ackLingerMs });
  await hub.start();
  const url = await serveHub(t, hub, async () => {
    await real.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const nodes = NODES.map((n) => new RawNode(url, n.id, n.token));
  let jobs = 0;
  const purge = async (n = 1): Promise<number[]> => {
    const { tasks } = await real.createJob(
      {
        jobId: `job${++jobs}`, appId: ACME.appId, zoneId: ACME.zoneId, type: 'purge_url', method: 'invalidate', createdAt: clock.now(), secretId: ACME.secretId,
        clientIp: '127.0.0.1', source: 'teo',
        tasks: Array.from({ length: n }, (_, i) => ({ target: `http://${ACME.host}/${jobs}/${i}`, hosts: [ACME.host], status: 'processing' as const, fanOut: true })),
      },
      { quotaType: 'purge_url', day: '2026-01-01', amount: n, daily: 1_000_000 },
    );
    hub.notify(await real.lastSeq());
    return tasks.map((x) => x.id);
  };
  const status = async (taskId: number) => {
    for (let j = 1; j <= jobs; j++) {
      const found = (await real.jobTasks(ACME.appId, `job${j}`)).find((x) => x.id === taskId);
      if (found) return found.status;
    }
    return undefined;
  };
  return { hub, real, writes, control, nodes, purge, status, clock };
}

/** Every node acks what it saw, with a report for each purge entry, all at once. */
const ackAll = (nodes: readonly RawNode[]) =>
  Promise.all(nodes.map((n) => n.ack({ seq: n.seenSeq(), driver: 'builtin', reports: n.entries().map((e) => ({ seq: e.seq, taskId: e.taskId, executedAs: 'invalidate' })) })));

test('acks arriving together are one durable write, with the task they complete; success only once the last node acked', async (t) => {
  const { writes, nodes, purge, status, real } = await setup(t, { ackLingerMs: 100 });
  for (const n of nodes) await n.stream(t);
  await Promise.all(nodes.map((n) => n.ack({ seq: 0 })));
  writes.length = 0;
  const [taskId] = await purge();
  await until('streamed to every node', () => nodes.every((n) => n.entries().length === 1));
  // All but one node: one write, the task still processing (status never claims more than is true).
  const first = await ackAll(nodes.slice(1));
  assert.ok(first.every((r) => r.status === 200 && r.json.ignoredReports === undefined), JSON.stringify(first[0]));
  assert.equal(writes.length, 1, `19 acks, ${writes.length} writes`);
  assert.equal(writes[0]!.acks.length, 19);
  assert.deepEqual(writes[0]!.settled, []);
  assert.equal(await status(taskId!), 'processing');
  // The last one: its ack and the task's success in the same transaction.
  const [last] = await ackAll(nodes.slice(0, 1));
  assert.equal(last!.status, 200);
  assert.equal(writes.length, 2);
  assert.deepEqual(writes[1]!.settled, [{ taskId, status: 'success' }]);
  assert.equal(await status(taskId!), 'success');
  assert.equal((await real.jobNodeReports(ACME.appId, 'job1')).length, 20, 'every report recorded');
});

test('an ack is answered only after its batch is durable; a failed batch records nothing and settles nothing', async (t) => {
  const { hub, control, nodes, purge, status, real } = await setup(t, { ackLingerMs: 0 });
  const few = nodes.slice(0, 20);
  for (const n of few) await n.stream(t);
  await Promise.all(few.map((n) => n.ack({ seq: 0 })));
  const [taskId] = await purge();
  await until('streamed', () => few.every((n) => n.entries().length === 1));
  let open!: () => void;
  control.gate = new Promise<void>((r) => (open = r));
  let answered = 0;
  const pending = ackAll(few).then((rs) => ((answered = rs.length), rs));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(answered, 0, 'no ack answered while its write is not durable');
  assert.equal(await status(taskId!), 'processing');
  control.fail = true;
  open();
  const rs = await pending;
  assert.ok(rs.every((r) => r.status === 500 && r.json.error === 'ack not recorded'), JSON.stringify(rs.map((r) => r.status)));
  assert.deepEqual(await real.nodeProgress().then((p) => p.filter((x) => x.ackedSeq > 0)), []);
  assert.equal(await status(taskId!), 'processing');
  const task = (await real.jobTasks(ACME.appId, 'job1'))[0]!;
  assert.ok(hub.nodeViews(task).every((v) => v.state === 'pending'), 'memory did not move either');
  // The nodes retry: recorded, settled.
  control.fail = false;
  control.gate = undefined;
  const again = await ackAll(few);
  assert.ok(again.every((r) => r.status === 200));
  await until('settled', async () => (await status(taskId!)) === 'success');
});

test('every settled task is announced once, with ack batches and settle passes racing', async (t) => {
  const { hub, nodes, purge, status, control } = await setup(t, { ackLingerMs: 1, heartbeatMs: 3 });
  control.readDelayMs = 4;
  const heard = new Map<number, number>();
  hub.onSettled((tasks) => {
    for (const u of tasks) heard.set(u.taskId, (heard.get(u.taskId) ?? 0) + 1);
  });
  for (const n of nodes) await n.stream(t);
  await Promise.all(nodes.map((n) => n.ack({ seq: 0 })));
  const ids: number[] = [];
  for (let i = 0; i < 10; i++) {
    ids.push(...(await purge(3)));
    await until('streamed', () => nodes.every((n) => n.entries().length === ids.length));
    await Promise.all(nodes.map((n) => n.ack({ seq: n.seenSeq() })));
  }
  await until('all settled', async () => (await Promise.all(ids.map(status))).every((s) => s === 'success'));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual([...heard.entries()].filter(([, n]) => n !== 1), [], 'no task announced twice');
  assert.equal(heard.size, ids.length);
});

test('the ack of the last node that owed one commits at once, without the linger; acks while others still owe wait for it', async (t) => {
  const { writes, nodes, purge, status } = await setup(t, { ackLingerMs: 60_000 });
  for (const n of nodes) await n.stream(t);
  // Every node owes an ack for its stream's start: the last one's flushes the batch.
  await Promise.all(nodes.map((n) => n.ack({ seq: 0 })));
  writes.length = 0;
  const [taskId] = await purge();
  await until('streamed to every node', () => nodes.every((n) => n.entries().length === 1));
  let answered = 0;
  const first = ackAll(nodes.slice(1)).then((rs) => ((answered = rs.length), rs));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(answered, 0, 'one node still owes an ack: the others linger for it');
  assert.equal(writes.length, 0);
  const started = Date.now();
  const [last] = await ackAll(nodes.slice(0, 1));
  assert.equal(last!.status, 200);
  assert.ok(Date.now() - started < 30_000, 'not held for the 60 s linger');
  assert.ok((await first).every((r) => r.status === 200));
  assert.equal(writes.length, 1, 'the 20 acks and the task they complete are one write');
  assert.equal(writes[0]!.acks.length, 20);
  assert.deepEqual(writes[0]!.settled, [{ taskId, status: 'success' }]);
  assert.equal(await status(taskId!), 'success');
  // An ack that covers nothing new (a lease renewal) lingers as before.
  let renewed = false;
  const renewal = nodes[0]!.ack({ seq: nodes[0]!.seenSeq() }).then((r) => ((renewed = true), r));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(renewed, false, 'a renewal alone waits for the linger');
  void renewal.catch(() => {});
});

test('a batch commits while the batch before it syncs: the last ack of a purge is not held behind that sync; each ack is answered after its own sync, in order', async (t) => {
  const { nodes, purge, status } = await setup(t, { ackLingerMs: 0 });
  for (const n of nodes) await n.stream(t);
  await Promise.all(nodes.map((n) => n.ack({ seq: 0 })));
  const [taskId] = await purge();
  await until('streamed to every node', () => nodes.every((n) => n.entries().length === 1));
  // The store's WAL syncs held by the test (node:fs patched, the store's ESM import resynced).
  const real = fs.fdatasync;
  const held: Array<() => void> = [];
  fs.fdatasync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => void held.push(() => real(fd, cb))) as typeof fs.fdatasync;
  syncBuiltinESMExports();
  const restore = () => {
    fs.fdatasync = real;
    syncBuiltinESMExports();
    for (const go of held.splice(0)) go();
  };
  // Released in the test, not in t.after: the hub's close (an earlier after hook) waits for the held syncs.
  const answered = [] as string[];
  let early: Array<Promise<void>> = [];
  let last: Promise<void> = Promise.resolve();
  try {
    early = nodes.slice(1).map((n, i) => n.ack({ seq: 1 }).then((r) => void answered.push(`edge-${i + 1} ${r.status}`)));
    await until('the first acks committed, their sync held', () => held.length > 0);
    last = nodes[0]!.ack({ seq: 1 }).then((r) => void answered.push(`edge-0 ${r.status}`));
    // Committed (and so readable) although the earlier batch's sync has not returned.
    await until('the last ack committed while an earlier sync is held', async () => (await status(taskId!)) === 'success');
    assert.equal(answered.length, 0, 'no ack answered before its sync');
  } finally {
    restore();
  }
  await Promise.all([...early, last]);
  assert.equal(answered.length, 20);
  assert.ok(answered.every((a) => a.endsWith(' 200')), answered.join());
  assert.equal(answered.at(-1), 'edge-0 200', 'answered in commit order: the last ack last');
});
