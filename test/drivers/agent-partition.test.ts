// Issue 8: a node's cache and agent partitioned from the control plane (the agent's TCP link to it held,
// as a dropped network holds it: nothing passes either way, nothing is closed). Varnish fences itself:
// once the agent's lease lapses it serves no hit, so no purged copy, and only then does the control plane
// count it fenced. nginx cannot: its node stays pending, never fenced, and the task ends as timeout,
// never success. Healed, both agents catch up on the log and the next purge succeeds on both.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, type AdminJobView } from '../e2e/helpers.ts';
import { ACME, driverSkip, nodeView, sharedDriverFleet, waitApplied, waitServing, warm } from './agent-fleet.ts';

type Obj = readonly [host: string, path: string];
const LEASE_MS = 4000;
const TASK_TIMEOUT_MS = 12_000;

const skip = driverSkip(['varnish', 'nginx'], 'agent partition test');
const df = skip ? () => assert.fail('skipped') : sharedDriverFleet(['varnish', 'nginx'], { leaseMs: LEASE_MS, taskTimeoutMs: TASK_TIMEOUT_MS });
const IDS = ['varnish-1', 'nginx-1'] as const;
/** The agent's link to the control plane (a Relay the test can hold). */
const link = (id: string) => df().fleet.agents.find((x) => x.id === id)?.link ?? assert.fail(`no agent ${id}`);

test('partitioned from the control plane: Varnish serves no purged copy once its lease lapses (then fenced), nginx is never fenced and the task times out; healed, the next purge succeeds', { skip }, async (t) => {
  const { fleet } = df();
  const a: Obj = [ACME.host, '/partition/a.txt'];
  const keep: Obj = [ACME.host, '/partition/keep.txt'];
  for (const id of IDS) {
    await waitServing(df(), id);
    await warm(df(), id, [a, keep]);
  }
  for (const id of IDS) link(id).pause();
  t.after(() => IDS.forEach((id) => link(id).resume()));
  const cutAt = Date.now();
  fleet.origin.bump(...a);
  const r = (await fleet.teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${a[0]}${a[1]}`] })) as { JobId: string };

  // Until the task settles: Varnish never serves the purged copy after its lease could have run out
  // (its last contact + the lease), and is never fenced before that; nginx is never fenced.
  let job: AdminJobView | undefined;
  let varnishChecks = 0;
  let nginxStale = 0;
  let leaseEnd = Number.POSITIVE_INFINITY;
  while (!job) {
    const j = await fleet.adminJob(r.JobId);
    const seen = nodeView(j, 'varnish-1')?.LastSeen;
    assert.ok(seen, 'varnish-1 was seen before the cut');
    // The lease the agent last renewed: it ran out LEASE_MS after the node's last contact.
    leaseEnd = Date.parse(seen) + LEASE_MS;
    const fenced = nodeView(j, 'varnish-1')?.State === 'fenced';
    if (fenced) assert.ok(Date.now() >= leaseEnd, 'fenced before the lease ran out');
    const sent = Date.now();
    const v = await df().cache('varnish-1').get(...a);
    if (sent > leaseEnd || fenced) {
      varnishChecks++;
      assert.ok(!(v.hit && v.body === fleet.origin.body(...a, 1)), `Varnish served the purged copy ${sent - leaseEnd} ms after its lease ran out`);
    }
    assert.notEqual(nodeView(j, 'nginx-1')?.State, 'fenced', 'an nginx node is never fenced');
    assert.notEqual(nodeView(j, 'nginx-1')?.State, 'applied', 'nginx-1 cannot have applied it: its link is cut');
    if (j.Tasks[0]?.Status === 'processing') {
      // Why nginx cannot count as fenced: it still serves the purged copy.
      const n = await df().cache('nginx-1').get(...a);
      if (n.hit && n.body === fleet.origin.body(...a, 1)) nginxStale++;
    } else job = j;
    assert.ok(Date.now() - cutAt < TASK_TIMEOUT_MS + 30_000, 'the task settles after its timeout');
    await sleep(200);
  }
  t.diagnostic(`settled ${Date.now() - cutAt} ms after the cut; ${varnishChecks} Varnish requests after the lease, none served the purged copy`);
  assert.ok(varnishChecks > 0, 'Varnish was asked after its lease lapsed');
  assert.ok(nginxStale > 0, 'nginx served the purged copy while cut off (why it is never fenced)');
  assert.equal(job.Tasks[0]?.Status, 'timeout', 'never success while nginx may serve the purged copy');
  assert.equal(nodeView(job, 'varnish-1')?.State, 'fenced');
  assert.equal(nodeView(job, 'nginx-1')?.State, 'pending');
  assert.ok(Date.now() - cutAt >= TASK_TIMEOUT_MS - 1000, 'not before the task timeout');

  // Healed: both agents catch up on the entry they missed, Varnish serves hits again, a new purge succeeds.
  for (const id of IDS) link(id).resume();
  for (const id of IDS) await waitApplied(df(), r.JobId, id);
  for (const id of IDS) {
    await waitServing(df(), id);
    const res = await df().cache(id).get(...a);
    assert.equal(res.body, fleet.origin.body(...a, 2), `${id} after the heal: ${res.xcache}`);
    const kept = await df().cache(id).get(...keep);
    assert.equal(kept.body, fleet.origin.body(...keep, 1), `${id}: ${keep[1]} was never purged`);
  }
  fleet.origin.bump(...keep);
  const r2 = (await fleet.teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${keep[0]}${keep[1]}`] })) as { JobId: string };
  const done = await fleet.settled(r2.JobId, 30_000);
  assert.equal(done.Tasks[0]?.Status, 'success');
  for (const id of IDS) {
    assert.equal(nodeView(done, id)?.State, 'applied', id);
    assert.equal((await df().cache(id).get(...keep)).body, fleet.origin.body(...keep, 2), `${id} serves the new ${keep[1]}`);
  }
});
