// A fleet whose nodes are real caches (varnishd, nginx) each with `edgepurge agent` as a child process,
// beside a control plane child process and a real origin (test/e2e/helpers.ts Fleet): the built-in
// edge's fleet scenarios, repeated for each driver.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { ACME, Fleet, Origin, until, type AdminJobView } from '../e2e/helpers.ts';
import { cacheMissing, startCacheNode, type CacheKind, type CacheNode } from './cache-nodes.ts';

export { ACME };

export interface DriverFleet {
  readonly fleet: Fleet;
  /** The cache of agent node `id` (`varnish-1`, `nginx-1`). */
  cache(id: string): CacheNode;
}

/** Skips loudly without varnishd/nginx, except under CI=true, where the test fails instead. */
export function driverSkip(kinds: readonly CacheKind[], what: string): string | false {
  const missing = kinds.map(cacheMissing).filter((m) => m !== undefined);
  if (missing.length === 0 || process.env.CI === 'true') return false;
  const reason = `SKIPPED: ${missing.join('; ')}`;
  console.warn(`\n*** ${what} ${reason} ***\n`);
  return reason;
}

/**
 * One fleet for the tests of a file or describe(): an origin, one cache per kind (node ids `KIND-1`),
 * the control plane and one agent process per cache, started in `before`, stopped in `after`.
 */
export function sharedDriverFleet(kinds: readonly CacheKind[], o: { leaseMs: number; taskTimeoutMs: number }): () => DriverFleet {
  let df: DriverFleet | undefined;
  const cleanups: Array<() => unknown> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  before(async () => {
    for (const k of kinds) {
      const m = cacheMissing(k);
      if (m !== undefined) throw new Error(`${k} is required under CI=true: ${m}`);
    }
    const origin = await new Origin().start();
    cleanups.push(() => origin.close());
    const caches = new Map<string, CacheNode>();
    for (const k of kinds) {
      const c = await startCacheNode(k, origin.port);
      cleanups.push(() => c.close());
      caches.set(`${k}-1`, c);
    }
    const fleet = await Fleet.start(
      { after: (fn) => void cleanups.push(fn) },
      { ...o, origin, nodeCount: 0, agents: [...caches].map(([id, c]) => ({ id, driver: c.driver })) },
    );
    df = {
      fleet,
      cache(id) {
        const c = caches.get(id);
        if (!c) throw new Error(`no cache ${id}`);
        return c;
      },
    };
    for (const id of caches.keys()) await waitServing(df, id);
  });
  return () => {
    if (!df) throw new Error('the driver fleet did not start');
    return df;
  };
}

export const nodeView = (job: AdminJobView, id: string) => job.Tasks[0]?.Nodes.find((n) => n.NodeId === id);

/** Polls the admin view until `id` has applied (acked) every task of the job. */
export function waitApplied(df: DriverFleet, jobId: string, id: string, ms = 30_000): Promise<AdminJobView> {
  return df.fleet.until(`${id} to apply job ${jobId}`, async () => {
    const job = await df.fleet.adminJob(jobId);
    return job.Tasks.length > 0 && job.Tasks.every((t) => t.Nodes.find((n) => n.NodeId === id)?.State === 'applied') ? job : undefined;
  }, ms);
}

let syncs = 0;

/**
 * Waits until agent `id` is connected and applies what it is sent (a purge of a path nobody caches is
 * acked), and, for a Varnish, until it serves hits again (its lease is fresh).
 */
export async function waitServing(df: DriverFleet, id: string, ms = 30_000): Promise<void> {
  const r = await df.fleet.teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/__sync/${++syncs}`] });
  await waitApplied(df, r.JobId, id, ms);
  if (df.cache(id).kind === 'varnish') await df.fleet.until(`${id} to serve hits`, async () => (await df.cache(id).get(ACME.host, `/__ready/${id}`)).hit, ms);
}

/** Caches `objs` on node `id`: fetched, then a hit of the same body. */
export async function warm(df: DriverFleet, id: string, objs: ReadonlyArray<readonly [string, string]>): Promise<void> {
  for (const [host, path] of objs) {
    const first = await df.cache(id).get(host, path);
    assert.equal(first.status, 200, `${id} ${host}${path}`);
    const second = await until(`${id} to cache ${host}${path}`, async () => {
      const r = await df.cache(id).get(host, path);
      return r.hit ? r : undefined;
    });
    assert.equal(second.body, first.body, `${id} ${host}${path}`);
  }
}
