// Issue 4, end to end with real processes: a control plane and three edge nodes (`edgepurge serve`,
// `edgepurge edge`) in front of a real origin, driven with the official EdgeOne SDK. Every purge type
// and method, prefetch (and its origin failure), per-node progress via the admin endpoint and the CLI,
// and a prefetch that outlives the task deadline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACME, PURGE_METHODS, PURGE_TYPES, purgeCase, sharedFleet, until, type AdminJobView } from './helpers.ts';

type Obj = readonly [host: string, path: string];

// Tasks here settle in milliseconds; the short deadline serves the timeout test at the end.
const fleet = sharedFleet({ leaseMs: 5000, taskTimeoutMs: 3000 });

/** First request on every node is a MISS, the second a HIT. */
async function warm(objs: readonly Obj[]): Promise<void> {
  for (const n of fleet().nodes) {
    for (const [host, path] of objs) {
      const first = await fleet().get(n.id, host, path);
      assert.equal(first.status, 200, `${n.id} ${host}${path}`);
      assert.equal(first.xcache, 'MISS', `${n.id} ${host}${path} first request`);
      const second = await fleet().get(n.id, host, path);
      assert.equal(second.xcache, 'HIT', `${n.id} ${host}${path} second request`);
      assert.equal(second.body, first.body);
    }
  }
}

/**
 * Every task success, and every node applied it (not merely fenced: all three are alive) and reported what
 * it executed: the built-in edge executes every method as asked; it counts what a URL purge matched, and
 * nothing for the rule purges, which apply lazily (no count is invented).
 */
async function expectApplied(jobId: string): Promise<AdminJobView> {
  const job = await fleet().settled(jobId);
  for (const task of job.Tasks) {
    assert.equal(task.Status, 'success', `${task.Target}: ${task.FailMessage ?? ''}`);
    assert.deepEqual(task.Nodes.map((n) => [n.NodeId, n.State]).sort(), fleet().nodes.map((n) => [n.id, 'applied']));
    for (const n of task.Nodes) {
      assert.deepEqual([n.Driver, n.ExecutedAs], ['builtin', job.Method], `${task.Target} on ${n.NodeId}`);
      assert.ok(n.AppliedAt !== null && Date.parse(n.AppliedAt) <= Date.now(), `${n.NodeId} applied at ${n.AppliedAt}`);
      if (job.Type === 'purge_url') assert.equal(typeof n.Matched, 'number', `${n.NodeId} counts URL purges`);
      else assert.equal(n.Matched, null, `${n.NodeId}: ${job.Type} is a lazy rule, nothing counted`);
    }
  }
  return job;
}

test('fleet basics: a purge_url delete succeeds only once all 3 nodes applied it; then each node misses and fetches unconditionally', async () => {
  const obj: Obj = [ACME.host, '/basics/index.html'];
  await warm([obj]);
  fleet().origin.bump(...obj);
  const mark = fleet().origin.mark();
  const r = await fleet().teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${obj[0]}${obj[1]}`] });
  assert.match(r.JobId, /\S/);
  await expectApplied(r.JobId);
  const sdk = await fleet().teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [r.JobId] }] });
  assert.deepEqual(sdk.Tasks.map((x: { Status: string; Type: string; Method: string }) => [x.Type, x.Method, x.Status]), [['purge_url', 'delete', 'success']]);
  for (const n of fleet().nodes) {
    const res = await fleet().get(n.id, ...obj);
    assert.equal(res.xcache, 'MISS', n.id);
    assert.equal(res.body, fleet().origin.body(...obj, 2), n.id);
    assert.equal((await fleet().get(n.id, ...obj)).xcache, 'HIT', `${n.id} caches the new copy`);
  }
  const seen = fleet().origin.seen(...obj, mark);
  assert.equal(seen.length, 3, 'one origin fetch per node');
  assert.ok(seen.every((h) => h.ifNoneMatch === undefined && h.status === 200), 'unconditional fetches');
});

for (const type of PURGE_TYPES) {
  for (const method of PURGE_METHODS) {
    const expect = method === 'invalidate' ? 'a conditional request answered 304 → REVALIDATED, old body kept' : 'an unconditional fetch → MISS, new body';
    test(`${type} ${method}: ${expect}; objects it does not name stay HIT`, async () => {
      const c = purgeCase(fleet().origin, type, method);
      await warm([...c.purged, ...c.kept]);
      // The origin has moved on for everything except invalidated objects (they must get their 304).
      for (const o of c.kept) fleet().origin.bump(...o);
      if (method === 'delete') for (const o of c.purged) fleet().origin.bump(...o);
      const mark = fleet().origin.mark();
      const r = await fleet().teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: type, Method: method, ...c.params });
      const job = await expectApplied(r.JobId);
      if (type === 'purge_url') assert.deepEqual(job.Tasks[0]!.Nodes.map((n) => n.Matched), [1, 1, 1], 'the one cached copy, on each node');
      const described = await fleet().teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [r.JobId] }] });
      for (const task of described.Tasks as Array<{ Type: string; Method: string; Status: string }>) assert.deepEqual([task.Type, task.Method, task.Status], [type, method, 'success']);

      for (const n of fleet().nodes) {
        for (const o of c.purged) {
          const res = await fleet().get(n.id, ...o);
          if (method === 'invalidate') {
            assert.equal(res.xcache, 'REVALIDATED', `${n.id} ${o.join('')}`);
            assert.equal(res.body, fleet().origin.body(...o, 1), 'the stored body is kept');
          } else {
            assert.equal(res.xcache, 'MISS', `${n.id} ${o.join('')}`);
            assert.equal(res.body, fleet().origin.body(...o, 2));
          }
          assert.equal((await fleet().get(n.id, ...o)).xcache, 'HIT', `${n.id} ${o.join('')} is cached again`);
        }
        for (const o of c.kept) {
          const res = await fleet().get(n.id, ...o);
          assert.equal(res.xcache, 'HIT', `${n.id} ${o.join('')} is outside the purge`);
          assert.equal(res.body, fleet().origin.body(...o, 1));
        }
      }
      for (const o of c.purged) {
        const seen = fleet().origin.seen(...o, mark);
        assert.equal(seen.length, 3, `${o.join('')}: one origin request per node`);
        if (method === 'invalidate') assert.deepEqual(seen.map((h) => [h.ifNoneMatch, h.status]), Array(3).fill(['"v1"', 304]));
        else assert.deepEqual(seen.map((h) => [h.ifNoneMatch, h.status]), Array(3).fill([undefined, 200]));
      }
      for (const o of c.kept) assert.deepEqual(fleet().origin.seen(...o, mark), [], `${o.join('')} never reached the origin`);
    });
  }
}

test('prefetch warms every node: the next request is a HIT without an origin request', async () => {
  const obj: Obj = [ACME.host, '/prefetch/warm.bin'];
  const mark = fleet().origin.mark();
  const r = await fleet().teo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${obj[0]}${obj[1]}`] });
  const job = await fleet().settled(r.JobId);
  assert.equal(job.Tasks[0]?.Status, 'success', job.Tasks[0]?.FailMessage);
  assert.deepEqual(job.Tasks[0]?.Nodes.map((n) => n.State), ['applied', 'applied', 'applied']);
  assert.equal(fleet().origin.seen(...obj, mark).length, 3, 'each node fetched it once');
  const fetched = fleet().origin.mark();
  for (const n of fleet().nodes) {
    const res = await fleet().get(n.id, ...obj);
    assert.equal(res.xcache, 'HIT', n.id);
    assert.equal(res.body, fleet().origin.body(...obj));
  }
  assert.deepEqual(fleet().origin.seen(...obj, fetched), []);
  const d = await fleet().teo.DescribePrefetchTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [r.JobId] }] });
  assert.equal(d.Tasks[0].Status, 'success');
});

test('prefetch of a URL the origin answers 404 fails with originPullFailed and a FailMessage (EdgeOne and CDN agree)', async () => {
  const obj: Obj = [ACME.host, '/prefetch/missing.bin'];
  fleet().origin.setStatus(...obj, 404);
  const r = await fleet().teo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${obj[0]}${obj[1]}`] });
  const job = await fleet().settled(r.JobId);
  assert.equal(job.Tasks[0]?.Status, 'failed');
  const firstMessage = job.Tasks[0]?.FailMessage;
  assert.match(firstMessage ?? '', /^edge-\d: origin returned 404$/);
  // Every node reports its own failure; the per-node view shows each, the task keeps the first.
  const all = await until('every node to report', async () => {
    const j = await fleet().adminJob(r.JobId);
    return j.Tasks[0]?.Nodes.every((n) => n.State === 'failed') ? j : undefined;
  });
  for (const n of all.Tasks[0]!.Nodes) assert.equal(n.FailMessage, `${n.NodeId}: origin returned 404`);
  assert.equal(all.Tasks[0]?.FailMessage, firstMessage, 'a settled task does not change');
  const d = await fleet().teo.DescribePrefetchTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [r.JobId] }] });
  assert.equal(d.Tasks[0].Status, 'failed');
  assert.equal(d.Tasks[0].FailType, 'originPullFailed');
  assert.match(d.Tasks[0].FailMessage, /^edge-\d: origin returned 404$/);
  const cdn = await fleet().cdn.DescribePushTasks({ TaskId: r.JobId });
  assert.equal(cdn.PushLogs[0].Status, 'fail', 'the CDN view of the same task');
  for (const n of fleet().nodes) assert.equal((await fleet().get(n.id, ...obj)).status, 404, 'nothing was cached');
});

test('per-node progress: the admin endpoint and `edgepurge tasks show` list every node of the job', async () => {
  const r = await fleet().teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/progress/a`, `http://${ACME.host2}/progress/b`] });
  await expectApplied(r.JobId);
  const job = await fleet().adminJob(r.JobId);
  assert.equal(job.JobId, r.JobId);
  assert.equal(job.Tasks.length, 2);
  for (const task of job.Tasks) {
    assert.ok(task.Seq !== null && task.Seq > 0);
    for (const n of task.Nodes) {
      assert.ok(n.AckedSeq >= task.Seq!, `${n.NodeId} acked past the task`);
      assert.ok(n.LastSeen !== null && Date.now() - Date.parse(n.LastSeen) < fleet().leaseMs, `${n.NodeId} seen recently`);
    }
  }
  const out = await fleet().cli(['tasks', 'show', r.JobId]);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, new RegExp(`${r.JobId}\\s+purge_url\\s+delete\\s+success\\s+http://${ACME.host}/progress/a`));
  assert.match(out.stdout, /Per-node progress:/);
  for (const target of [`http://${ACME.host}/progress/a`, `http://${ACME.host2}/progress/b`]) {
    // Target, Node, Driver, State, ExecutedAs, Matched, AppliedAt, AckedSeq: nothing was cached, so 0 matched.
    for (const n of fleet().nodes) assert.match(out.stdout, new RegExp(`${target}\\s+${n.id}\\s+builtin\\s+applied\\s+delete\\s+0\\s+\\d{4}-\\d\\d-\\d\\dT\\S+\\s+\\d+`), `${target} on ${n.id}`);
  }
  const json = await fleet().cli(['tasks', 'show', r.JobId, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { Tasks: unknown[]; Progress: Array<{ Nodes: Array<{ State: string }> }> };
  assert.equal(parsed.Tasks.length, 2);
  assert.deepEqual(parsed.Progress.flatMap((t) => t.Nodes.map((n) => n.State)), Array(6).fill('applied'));
  const unknown = await fleet().cli(['tasks', 'show', 'nosuchjob123']);
  assert.equal(unknown.code, 2, 'a job the account does not have is a user error');
});

test('timeout: a prefetch whose origin never answers stays processing while the nodes hold their leases, then times out naming them', async () => {
  const obj: Obj = [ACME.host, '/prefetch/slow.bin'];
  fleet().origin.hold(...obj);
  try {
    const r = await fleet().teo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${obj[0]}${obj[1]}`] });
    const started = Date.now();
    const pending = await fleet().adminJob(r.JobId);
    assert.equal(pending.Tasks[0]?.Status, 'processing');
    const job = await fleet().settled(r.JobId, fleet().taskTimeoutMs + 5000);
    assert.ok(Date.now() - started >= fleet().taskTimeoutMs - 500, 'not before the deadline');
    assert.equal(job.Tasks[0]?.Status, 'timeout');
    const d = await fleet().teo.DescribePrefetchTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [r.JobId] }] });
    assert.equal(d.Tasks[0].Status, 'timeout');
    assert.match(d.Tasks[0].FailMessage, /edge-1, edge-2, edge-3/);
    // The origin finally answers, with an error: the nodes report it, the timeout stays.
    fleet().origin.setStatus(...obj, 503);
    fleet().origin.release();
    await until('every node to report', async () => (await fleet().adminJob(r.JobId)).Tasks[0]?.Nodes.every((n) => n.State === 'failed'));
    const final = await fleet().adminJob(r.JobId);
    assert.equal(final.Tasks[0]?.Status, 'timeout', 'a final status is final');
    assert.equal(final.Tasks[0]?.FailMessage, d.Tasks[0].FailMessage);
  } finally {
    fleet().origin.release();
  }
});
