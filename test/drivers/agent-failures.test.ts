// Issue 8, end to end with real processes: the built-in edge's failure scenarios (test/e2e/node-failures)
// repeated for each driver, with `edgepurge agent` as a child process beside a real varnishd or nginx:
// the agent SIGKILLed during a purge, the cache restarted empty, the agent behind the retained log, the
// agent frozen past its lease. Nothing is acked that the cache did not apply, and a status never says
// success while the node may still serve the purged copy.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test, type TestContext } from 'node:test';
import { SqliteTaskStore } from '../../src/store/sqlite/sqlite-task-store.ts';
import { sleep, until, type AdminJobView } from '../e2e/helpers.ts';
import { ACME, driverSkip, nodeView, sharedDriverFleet, waitApplied, waitServing, warm, type DriverFleet } from './agent-fleet.ts';
import type { CacheKind } from './cache-nodes.ts';

type Obj = readonly [host: string, path: string];
const LEASE_MS = 4000;

const purgeUrl = (df: DriverFleet, o: Obj) => df.fleet.teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${o[0]}${o[1]}`] }) as Promise<{ JobId: string }>;
const taskSeq = (job: AdminJobView): number => job.Tasks[0]?.Seq ?? assert.fail('the task has a seq');
const savedSeq = (df: DriverFleet, id: string): number => Number(readFileSync(df.fleet.stateFile(id), 'utf8').trim());

for (const kind of ['varnish', 'nginx'] as const satisfies readonly CacheKind[]) {
  const id = `${kind}-1`;
  const skip = driverSkip([kind], `${kind} agent failure tests`);
  describe(`${kind} agent failures`, { skip }, () => {
    const df = skip ? () => assert.fail('skipped') : sharedDriverFleet([kind], { leaseMs: LEASE_MS, taskTimeoutMs: 120_000 });
    const cache = () => df().cache(id);
    const fleet = () => df().fleet;

    /** `a` cached and changed at the origin, the agent frozen (SIGSTOP), then a purge of `a` submitted. */
    async function freezeAgentThenPurge(t: TestContext, a: Obj): Promise<{ JobId: string }> {
      await waitServing(df(), id);
      await warm(df(), id, [a]);
      await fleet().signal(id, 'SIGSTOP');
      t.after(() => fleet().agents.find((x) => x.id === id)?.proc?.kill('SIGCONT'));
      fleet().origin.bump(...a);
      return purgeUrl(df(), a);
    }

    test(`${kind}: the agent SIGKILLed with a purge in flight acked nothing it had not applied; restarted, it resumes from its state file and applies it`, async (t) => {
      const a: Obj = [ACME.host, '/kill/a.txt'];
      const b: Obj = [ACME.host, '/kill/b.txt'];
      const keep: Obj = [ACME.host, '/kill/keep.txt'];
      await waitServing(df(), id);
      await warm(df(), id, [a, b, keep]);
      for (const o of [a, b, keep]) fleet().origin.bump(...o);
      const r1 = await purgeUrl(df(), a);
      await waitApplied(df(), r1.JobId, id);
      await until('the state file to reach the first purge', async () => savedSeq(df(), id) >= taskSeq(await fleet().adminJob(r1.JobId)));
      // The cache hangs (SIGSTOP): the agent gets the second purge but cannot have it executed.
      cache().freeze();
      t.after(() => cache().thaw());
      const r2 = await purgeUrl(df(), b);
      await sleep(1000);
      await fleet().signal(id, 'SIGKILL');
      cache().thaw();
      const killed = await fleet().adminJob(r2.JobId);
      const seq2 = taskSeq(killed);
      assert.ok((nodeView(killed, id)?.AckedSeq ?? 0) < seq2, `${id} acked seq ${nodeView(killed, id)?.AckedSeq} ≥ ${seq2}, a purge its cache never executed`);
      assert.ok(savedSeq(df(), id) < seq2, 'the state file does not claim the purge either');
      // Processing, unless a stalled machine let Varnish's lease run out meanwhile (then fenced, never applied).
      if (killed.Tasks[0]?.Status !== 'processing') assert.deepEqual([kind, nodeView(killed, id)?.State], ['varnish', 'fenced']);
      else assert.equal(nodeView(killed, id)?.State, 'pending');

      await fleet().startAgent(id);
      const applied = await waitApplied(df(), r2.JobId, id);
      assert.ok(nodeView(applied, id)!.AckedSeq >= seq2);
      assert.equal((await fleet().settled(r2.JobId, 30_000)).Tasks[0]?.Status, 'success');
      await waitServing(df(), id);
      const after = await cache().get(...b);
      assert.equal(after.hit, false, `${b[1]} after the restart: ${after.xcache}`);
      assert.equal(after.body, fleet().origin.body(...b, 2));
      // Resumed from its seq, not from the log's end: the cache was not emptied, other objects stay.
      const kept = await cache().get(...keep);
      assert.deepEqual([kept.hit, kept.body], [true, fleet().origin.body(...keep, 1)], `${keep[1]} kept across the agent restart (${kept.xcache})`);
      assert.ok(!fleet().log.some((l) => l.startsWith(`[${id} `) && /emptying the cache/.test(l)), 'the restarted agent did not empty the cache');
    });

    test(`${kind}: the cache restarted empty while the agent runs: the purge sent meanwhile waits, then is applied; purges keep working`, async () => {
      const a: Obj = [ACME.host, '/restart/a.txt'];
      const b: Obj = [ACME.host, '/restart/dir/b.txt'];
      await waitServing(df(), id);
      await warm(df(), id, [a]);
      await cache().stop();
      fleet().origin.bump(...a);
      const r1 = await purgeUrl(df(), a);
      await sleep(1000);
      const down = await fleet().adminJob(r1.JobId);
      assert.ok((nodeView(down, id)?.AckedSeq ?? 0) < taskSeq(down), 'not acked while the cache is down');
      await cache().start({ empty: true });
      await waitApplied(df(), r1.JobId, id);
      assert.equal((await fleet().settled(r1.JobId, 30_000)).Tasks[0]?.Status, 'success');
      // Varnish came back without token and lease: the agent pushes both again, then hits are served.
      await waitServing(df(), id);
      await warm(df(), id, [a, b]);
      assert.equal((await cache().get(...a)).body, fleet().origin.body(...a, 2));
      fleet().origin.bump(...b);
      const r2 = await df().fleet.teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Method: 'delete', Targets: [`http://${ACME.host}/restart/dir/`] });
      await waitApplied(df(), r2.JobId, id);
      const res = await cache().get(...b);
      assert.deepEqual([res.hit, res.body], [false, fleet().origin.body(...b, 2)], `${b[1]} after the purge (${res.xcache})`);
      const kept = await cache().get(...a);
      assert.ok(kept.hit, `${a[1]} outside the prefix stays cached (${kept.xcache})`);
    });

    test(`${kind}: an agent behind the retained log (pruned past it) empties the cache before it acks`, async () => {
      const a: Obj = [ACME.host, '/behind/a.txt'];
      const keep: Obj = [ACME.host, '/behind/untouched.txt'];
      await waitServing(df(), id);
      await warm(df(), id, [a, keep]);
      await fleet().signal(id, 'SIGTERM');
      for (const o of [a, keep]) fleet().origin.bump(...o);
      // A purge the stopped agent never sees: the log is pruned past it below.
      const missed = await purgeUrl(df(), a);
      const seqMissed = taskSeq(await fleet().adminJob(missed.JobId));
      assert.ok(savedSeq(df(), id) < seqMissed);
      await fleet().stopControlPlane();
      const store = new SqliteTaskStore({ path: fleet().storePath });
      await store.start();
      try {
        assert.ok((await store.prune(Date.now() + 1000)) > 0, 'pruned');
        assert.ok((await store.firstSeq()) > savedSeq(df(), id) + 1, 'the log now starts past the agent');
      } finally {
        await store.close();
      }
      await fleet().startControlPlane();
      await fleet().startAgent(id);
      // The first ack after the reset must come after the cache was emptied: poll for it, then look.
      const r = await purgeUrl(df(), [ACME.host, '/behind/sync.txt']);
      await waitApplied(df(), r.JobId, id);
      await waitServing(df(), id);
      for (const o of [a, keep]) {
        const res = await cache().get(...o);
        assert.deepEqual([res.hit, res.body], [false, fleet().origin.body(...o, 2)], `${o[1]}: the cache was emptied (${res.xcache})`);
      }
      assert.ok(fleet().log.some((l) => l.startsWith(`[${id} `) && /fell behind the retained purge log; emptying the cache/.test(l)), 'the agent said why it emptied the cache');
    });

    if (kind === 'varnish') {
      test('varnish: the agent frozen past its lease — no purged copy is served once the lease ran out, and only then is the node fenced', async (t) => {
        const a: Obj = [ACME.host, '/frozen/a.txt'];
        const r = await freezeAgentThenPurge(t, a);
        let leaseEnd = Number.POSITIVE_INFINITY;
        let processingSeen = 0;
        const job = await until('the task to settle', async () => {
          const j = await fleet().adminJob(r.JobId);
          const node = nodeView(j, id);
          assert.ok(node?.LastSeen, `${id} was seen before`);
          leaseEnd = Date.parse(node.LastSeen) + LEASE_MS;
          const sent = Date.now();
          const res = await cache().get(...a);
          // Before the lease ran out Varnish may still serve the old copy (bounded staleness); after, never.
          if (sent > leaseEnd) assert.ok(!(res.hit && res.body === fleet().origin.body(...a, 1)), `the purged copy served ${sent - leaseEnd} ms after the lease ran out`);
          if (j.Tasks[0]?.Status === 'processing') {
            processingSeen++;
            if (Date.now() < leaseEnd) assert.notEqual(node.State, 'applied');
            return undefined;
          }
          return j;
        }, 60_000);
        assert.ok(processingSeen > 0);
        assert.ok(Date.now() >= leaseEnd, `settled ${leaseEnd - Date.now()} ms before the lease ran out`);
        assert.equal(job.Tasks[0]?.Status, 'success');
        assert.equal(nodeView(job, id)?.State, 'fenced');
        const res = await cache().get(...a);
        assert.deepEqual([res.hit, res.body], [false, fleet().origin.body(...a, 2)], `after the lease: ${res.xcache}`);

        await fleet().signal(id, 'SIGCONT');
        await waitApplied(df(), r.JobId, id);
        await waitServing(df(), id);
      });
    } else {
      test('nginx: the agent frozen past its lease is never counted fenced — the task stays processing until it is resumed and applies it', async (t) => {
        const a: Obj = [ACME.host, '/frozen/a.txt'];
        const r = await freezeAgentThenPurge(t, a);
        const until2Leases = Date.now() + 2 * LEASE_MS;
        while (Date.now() < until2Leases) {
          const j = await fleet().adminJob(r.JobId);
          assert.equal(j.Tasks[0]?.Status, 'processing', 'no success while nginx may serve the purged copy');
          assert.equal(nodeView(j, id)?.State, 'pending', 'an nginx node is never fenced');
          await sleep(200);
        }
        // Why: nginx still serves the purged copy while its agent is frozen.
        const stale = await cache().get(...a);
        assert.deepEqual([stale.hit, stale.body], [true, fleet().origin.body(...a, 1)]);
        await fleet().signal(id, 'SIGCONT');
        const job = await waitApplied(df(), r.JobId, id);
        assert.equal(nodeView(job, id)?.State, 'applied');
        assert.equal((await fleet().settled(r.JobId, 30_000)).Tasks[0]?.Status, 'success');
        const res = await cache().get(...a);
        assert.deepEqual([res.hit, res.body], [false, fleet().origin.body(...a, 2)], `after the resumed agent applied it: ${res.xcache}`);
      });
    }
  });
}
