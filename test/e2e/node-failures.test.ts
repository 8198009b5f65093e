// Issue 4, end to end with real processes: edge nodes that die (SIGKILL) or freeze (SIGSTOP) while a
// purge is under way. The task waits for them until their lease has surely run out (DESIGN invariants
// 3-4), and neither a restarted nor a resumed node ever serves the purged copy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACME, sharedFleet, sleep, until, type AdminJobView } from './helpers.ts';

type Obj = readonly [host: string, path: string];

// The lease must outlast the steps before the test watches the task wait for it, on a loaded machine.
const fleet = sharedFleet({ leaseMs: 4000, taskTimeoutMs: 20_000 });

async function warm(objs: readonly Obj[]): Promise<void> {
  for (const n of fleet().nodes) {
    for (const o of objs) {
      assert.equal((await fleet().get(n.id, ...o)).xcache, 'MISS', `${n.id} ${o.join('')}`);
      assert.equal((await fleet().get(n.id, ...o)).xcache, 'HIT', `${n.id} ${o.join('')}`);
    }
  }
}

const stateOf = (job: AdminJobView, nodeId: string) => job.Tasks[0]?.Nodes.find((n) => n.NodeId === nodeId)?.State;

/**
 * Waits for the job to settle while checking, on every poll, that it is not success while `nodeId`'s
 * lease could still be valid (its last ack + leaseMs); returns the settled view.
 */
async function settledNotBeforeFence(jobId: string, nodeId: string): Promise<{ job: AdminJobView; processingSeen: number }> {
  let processingSeen = 0;
  const job = await until(`job ${jobId} to settle`, async () => {
    const j = await fleet().adminJob(jobId);
    const node = j.Tasks[0]?.Nodes.find((n) => n.NodeId === nodeId);
    assert.ok(node?.LastSeen, `${nodeId} was seen before`);
    const leaseEnd = Date.parse(node.LastSeen) + fleet().leaseMs;
    if (j.Tasks[0]?.Status === 'processing') {
      processingSeen++;
      // The view is live, the status is settled periodically: "fenced" may show a moment before it.
      if (Date.now() < leaseEnd) assert.equal(node.State, 'pending', `${nodeId} is pending while its lease may be valid`);
      return undefined;
    }
    assert.ok(Date.now() >= leaseEnd, `settled ${leaseEnd - Date.now()} ms before ${nodeId}'s lease ran out`);
    return j;
  }, fleet().taskTimeoutMs);
  return { job, processingSeen };
}

test('a node killed before a purge holds the task until it is fenced; restarted, it serves no purged copy and catches up', async () => {
  const obj: Obj = [ACME.host, '/killed/a.txt'];
  await warm([obj]);
  await fleet().signal('edge-2', 'SIGKILL');
  fleet().origin.bump(...obj);
  const r = await fleet().teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${obj[0]}${obj[1]}`] });
  // The live nodes apply it at once; the task still waits for edge-2.
  const early = await until('edge-1 and edge-3 to apply', async () => {
    const j = await fleet().adminJob(r.JobId);
    return stateOf(j, 'edge-1') === 'applied' && stateOf(j, 'edge-3') === 'applied' ? j : undefined;
  });
  assert.equal(early.Tasks[0]?.Status, 'processing');
  assert.equal(stateOf(early, 'edge-2'), 'pending');
  const cdnEarly = await fleet().cdn.DescribePurgeTasks({ TaskId: r.JobId });

  const { job, processingSeen } = await settledNotBeforeFence(r.JobId, 'edge-2');
  assert.ok(processingSeen > 0);
  assert.equal(job.Tasks[0]?.Status, 'success');
  assert.deepEqual(job.Tasks[0]?.Nodes.map((n) => [n.NodeId, n.State]), [['edge-1', 'applied'], ['edge-2', 'fenced'], ['edge-3', 'applied']]);
  assert.deepEqual(job.Tasks[0]?.Nodes.map((n) => n.ExecutedAs), ['delete', null, 'delete'], 'the fenced node executed nothing, and its progress does not pretend it did');
  // The CDN view follows the same truth: process while waiting, done once fenced.
  assert.equal(cdnEarly.PurgeLogs[0].Status, 'process');
  assert.equal((await fleet().cdn.DescribePurgeTasks({ TaskId: r.JobId })).PurgeLogs[0].Status, 'done');
  assert.equal((await fleet().teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [r.JobId] }] })).Tasks[0].Status, 'success');
  // (The CLI is asked only now: starting it can outlast the lease on a loaded machine.)
  const cli = await fleet().cli(['tasks', 'show', r.JobId]);
  assert.equal(cli.code, 0, cli.stderr);
  // Node, Driver, State, ExecutedAs, Matched, AppliedAt, AckedSeq: the fenced node has no execution to show.
  assert.match(cli.stdout, /edge-2\s+builtin\s+fenced\s+\d+\s/);
  assert.match(cli.stdout, /edge-1\s+builtin\s+applied\s+delete\s+\d+\s+\d{4}-/);

  // Restarted with the same config: its memory cache is empty, so the very first request misses.
  const mark = fleet().origin.mark();
  await fleet().startNode('edge-2', { serving: false });
  const first = await fleet().get('edge-2', ...obj);
  assert.equal(first.xcache, 'MISS');
  assert.equal(first.body, fleet().origin.body(...obj, 2));
  assert.deepEqual(fleet().origin.seen(...obj, mark).map((h) => h.ifNoneMatch), [undefined]);
  // (What it stored before its first contact may be dropped then: see the regression test below.)
  await fleet().waitServing('edge-2');
  await until('edge-2 to HIT', async () => (await fleet().get('edge-2', ...obj)).xcache === 'HIT');

  // Caught up: the next purge is applied by edge-2 itself, not fenced.
  fleet().origin.bump(...obj);
  const r2 = await fleet().teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${obj[0]}${obj[1]}`] });
  const job2 = await fleet().settled(r2.JobId, 3000);
  assert.equal(job2.Tasks[0]?.Status, 'success');
  assert.deepEqual(job2.Tasks[0]?.Nodes.map((n) => n.State), ['applied', 'applied', 'applied']);
  const after2 = await fleet().get('edge-2', ...obj);
  assert.equal(after2.xcache, 'MISS');
  assert.equal(after2.body, fleet().origin.body(...obj, 3));
});

test('a node frozen (SIGSTOP) past its lease is fenced; resumed, its first answer is not a HIT of the purged copy, and it catches up', async (t) => {
  const byUrl: Obj = [ACME.host, '/frozen/a.txt'];
  const byPrefix: Obj = [ACME.host, '/frozen/dir/b.txt'];
  await warm([byUrl, byPrefix]);
  // The purge must not be waiting in its socket when it wakes up (as when a paused VM resumes before its
  // network does): hold its link to the control plane as well, so only its lease can protect it.
  const link = fleet().node('edge-3').link;
  t.after(() => link.resume());
  link.pause();
  await fleet().signal('edge-3', 'SIGSTOP');
  t.after(() => fleet().node('edge-3').proc?.kill('SIGCONT'));
  fleet().origin.bump(...byUrl);
  fleet().origin.bump(...byPrefix);
  const r1 = await fleet().teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${byUrl[0]}${byUrl[1]}`] });
  const r2 = await fleet().teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Method: 'invalidate', Targets: [`http://${ACME.host}/frozen/dir/`] });
  const { job, processingSeen } = await settledNotBeforeFence(r1.JobId, 'edge-3');
  assert.ok(processingSeen > 0);
  assert.equal(job.Tasks[0]?.Status, 'success');
  assert.equal(stateOf(job, 'edge-3'), 'fenced');
  const job2 = await fleet().settled(r2.JobId);
  assert.equal(job2.Tasks[0]?.Status, 'success');
  assert.equal(stateOf(job2, 'edge-3'), 'fenced');
  for (const id of ['edge-1', 'edge-2']) assert.equal((await fleet().get(id, ...byUrl)).body, fleet().origin.body(...byUrl, 2));

  // Requests sent while it is frozen wait in the kernel: they are the first thing it handles on resuming.
  const mark = fleet().origin.mark();
  const pendingUrl = fleet().get('edge-3', ...byUrl);
  const pendingPrefix = fleet().get('edge-3', ...byPrefix);
  await sleep(200);
  await fleet().signal('edge-3', 'SIGCONT');
  for (const [o, res] of [[byUrl, await pendingUrl], [byPrefix, await pendingPrefix]] as const) {
    assert.notEqual(res.xcache, 'HIT', `${o.join('')}: the purged copy is not served from cache`);
    assert.equal(res.body, fleet().origin.body(...o, 2), `${o.join('')}: the new version`);
    assert.equal(fleet().origin.seen(...o, mark).length, 1, `${o.join('')}: went to the origin`);
  }

  // Its link back: it catches up, holds a fresh lease again, serves hits, and has applied both purges.
  link.resume();
  await fleet().waitServing('edge-3');
  for (const o of [byUrl, byPrefix]) {
    const res = await until(`edge-3 to HIT ${o.join('')}`, async () => {
      const x = await fleet().get('edge-3', ...o);
      return x.xcache === 'HIT' ? x : undefined;
    });
    assert.equal(res.body, fleet().origin.body(...o, 2));
  }
  for (const id of [r1.JobId, r2.JobId]) assert.equal(stateOf(await fleet().adminJob(id), 'edge-3'), 'applied');
});

test('a node cut off from the control plane stops serving hits once its lease has run out, before the task counts it as fenced', async (t) => {
  const obj: Obj = [ACME.host, '/partition/a.txt'];
  await warm([obj]);
  const link = fleet().node('edge-1').link;
  t.after(() => link.resume());
  link.pause();
  fleet().origin.bump(...obj);
  const r = await fleet().teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'invalidate', Targets: [`http://${obj[0]}${obj[1]}`] });
  // Until then edge-1 may still answer from cache (bounded staleness); once the task is success it must not.
  const { job } = await settledNotBeforeFence(r.JobId, 'edge-1');
  assert.equal(job.Tasks[0]?.Status, 'success');
  assert.equal(stateOf(job, 'edge-1'), 'fenced');
  for (let i = 0; i < 3; i++) {
    const res = await fleet().get('edge-1', ...obj);
    assert.notEqual(res.xcache, 'HIT', `request ${i} while cut off`);
    assert.equal(res.body, fleet().origin.body(...obj, 2));
  }
  link.resume();
  // Back in touch it applies the invalidate (a revalidation, answered 304), then serves hits again.
  await fleet().waitServing('edge-1');
  await until('edge-1 to HIT again', async () => (await fleet().get('edge-1', ...obj)).xcache === 'HIT');
  assert.equal(stateOf(await fleet().adminJob(r.JobId), 'edge-1'), 'applied');
});

test('regression: a node that cached objects before it first reached the control plane does not skip the purges committed meanwhile', async (t) => {
  const obj: Obj = [ACME.host, '/before-contact/a.txt'];
  await fleet().stopControlPlane();
  await fleet().signal('edge-2', 'SIGKILL');
  await fleet().startNode('edge-2', { serving: false });
  // The control plane is down: edge-2 serves misses (no lease, no hits) and stores them.
  const first = await fleet().get('edge-2', ...obj);
  assert.equal(first.xcache, 'MISS');
  assert.equal(first.body, fleet().origin.body(...obj, 1));
  // Its first contact is held back until after the purge below is committed.
  const link = fleet().node('edge-2').link;
  t.after(() => link.resume());
  link.pause();
  await fleet().startControlPlane();
  for (const id of ['edge-1', 'edge-3']) await fleet().waitServing(id);
  fleet().origin.bump(...obj);
  const r = await fleet().teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${obj[0]}${obj[1]}`] });
  await until('edge-1 and edge-3 to apply', async () => {
    const j = await fleet().adminJob(r.JobId);
    return stateOf(j, 'edge-1') === 'applied' && stateOf(j, 'edge-3') === 'applied';
  });
  link.resume();
  await fleet().waitServing('edge-2');
  const res = await fleet().get('edge-2', ...obj);
  assert.notEqual(res.xcache, 'HIT', 'the copy stored before the purge is not served');
  assert.equal(res.body, fleet().origin.body(...obj, 2));
  const job = await fleet().settled(r.JobId);
  assert.equal(job.Tasks[0]?.Status, 'success');
});

test('regression: an edge node exits promptly on SIGTERM while the control plane is unreachable (no waiting out the reconnect backoff)', async () => {
  await fleet().stopControlPlane();
  // Long enough for the reconnect backoff to grow past 3 s (100 ms doubling, jittered up to 2×).
  await sleep(6000);
  const started = Date.now();
  await fleet().signal('edge-1', 'SIGTERM');
  const took = Date.now() - started;
  // It takes a few ms (about 1 s seen at load 20 on 2 cores); waiting out the backoff took up to its
  // 5-10 s cap.
  assert.ok(took < 1500, `exited after ${took} ms`);
});
