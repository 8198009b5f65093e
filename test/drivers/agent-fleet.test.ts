// Issue 8, end to end with real processes: a control plane, a varnishd and an nginx, each with
// `edgepurge agent` as a child process, in front of a real origin, driven with the official EdgeOne SDK.
// Every purge type × method reaches both caches: a delete refetches unconditionally, an invalidate the
// driver executes softly revalidates with a conditional request the origin sees (answered 304), one it
// executes as delete (Varnish bans) refetches; objects the purge does not name stay cached.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PURGE_METHODS, PURGE_TYPES, purgeCase, type PurgeType } from '../e2e/helpers.ts';
import { ACME, driverSkip, sharedDriverFleet, waitApplied, warm, type DriverFleet } from './agent-fleet.ts';
import type { CacheKind } from './cache-nodes.ts';


const KINDS: readonly CacheKind[] = ['varnish', 'nginx'];
const NODES = KINDS.map((k) => `${k}-1`);
const skip = driverSkip(KINDS, 'agent fleet tests');
// A lease long enough that a loaded machine does not let Varnish's lapse between two GETs of a test.
const df: () => DriverFleet = skip ? () => assert.fail('skipped') : sharedDriverFleet(KINDS, { leaseMs: 6000, taskTimeoutMs: 60_000 });

/**
 * Which types a driver executes softly for `invalidate` (src/drivers/varnish/README.md, nginx/README.md):
 * Varnish bans (prefix, host, all) have no soft form and run as delete; nginx expires every type.
 */
const SOFT: Readonly<Record<CacheKind, ReadonlySet<PurgeType>>> = {
  varnish: new Set(['purge_url', 'purge_cache_tag']),
  nginx: new Set(PURGE_TYPES),
};

for (const type of PURGE_TYPES) {
  for (const method of PURGE_METHODS) {
    test(`${type} ${method} through the SDK on Varnish and nginx: success once both agents applied it; purged objects refetched or revalidated, the rest stay hits`, { skip }, async () => {
      const { fleet } = df();
      const c = purgeCase(fleet.origin, type, method);
      for (const id of NODES) await warm(df(), id, [...c.purged, ...c.kept]);
      // The origin moves on for every object except those an invalidate should find unchanged (a 304).
      for (const o of c.kept) fleet.origin.bump(...o);
      if (method === 'delete') for (const o of c.purged) fleet.origin.bump(...o);
      const mark = fleet.origin.mark();
      const r = await fleet.teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: type, Method: method, ...c.params });
      for (const id of NODES) await waitApplied(df(), r.JobId, id);
      const job = await fleet.settled(r.JobId, 30_000);
      for (const task of job.Tasks) assert.equal(task.Status, 'success', `${task.Target}: ${task.FailMessage ?? ''}`);
      const described = await fleet.teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [r.JobId] }] });
      for (const task of described.Tasks as Array<{ Type: string; Method: string; Status: string }>) assert.deepEqual([task.Type, task.Method, task.Status], [type, method, 'success']);

      for (const id of NODES) {
        const kind = df().cache(id).kind;
        const soft = method === 'invalidate' && SOFT[kind].has(type);
        for (const o of c.purged) {
          const from = fleet.origin.mark();
          const res = await df().cache(id).get(...o);
          assert.equal(res.hit, false, `${id} ${o.join('')}: not served from cache after the purge (${res.xcache})`);
          // Delete: the new version; invalidate: the stored body (unchanged at the origin), revalidated or refetched.
          assert.equal(res.body, fleet.origin.body(...o, method === 'delete' ? 2 : 1), `${id} ${o.join('')}`);
          const seen = fleet.origin.seen(...o, from);
          assert.equal(seen.length, 1, `${id} ${o.join('')}: one origin request`);
          if (soft) assert.deepEqual([seen[0]?.ifNoneMatch, seen[0]?.status], ['"v1"', 304], `${id} ${o.join('')}: a conditional revalidation`);
          else assert.deepEqual([seen[0]?.ifNoneMatch, seen[0]?.status], [undefined, 200], `${id} ${o.join('')}: an unconditional refetch`);
          const again = await df().cache(id).get(...o);
          assert.ok(again.hit, `${id} ${o.join('')} is cached again (${again.xcache})`);
        }
        for (const o of c.kept) {
          const res = await df().cache(id).get(...o);
          assert.ok(res.hit, `${id} ${o.join('')} is outside the purge and stays cached (${res.xcache})`);
          assert.equal(res.body, fleet.origin.body(...o, 1));
        }
      }
      for (const o of c.kept) assert.deepEqual(fleet.origin.seen(...o, mark), [], `${o.join('')} never reached the origin`);
    });
  }
}
