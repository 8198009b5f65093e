// The EdgeDriver conformance suite: every driver (varnish, nginx, …) runs it against its real cache
// (STYLE 13). A harness puts the cache in front of a scripted origin and the driver in front of the cache;
// the suite checks what clients then get: purged objects are refetched (delete) or revalidated with a
// conditional request (invalidate) and never served as they were, everything else stays a cache hit.
import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DriverError, type DriverCommand, type DriverReport, type EdgeDriver } from '../../src/drivers/edge-driver.ts';

// ---- the origin ----

export interface OriginRequest {
  readonly method: string;
  readonly host: string;
  readonly path: string;
  /** It carried If-None-Match or If-Modified-Since (a revalidation). */
  readonly conditional: boolean;
  readonly headers: IncomingHttpHeaders;
}

/**
 * A scripted origin for any host: every path answers 200 `<host><path> v<version>` with an ETag and a
 * Last-Modified per version, `Cache-Control: public, max-age=3600, stale-while-revalidate=300` (so caches
 * keep stale copies in grace: a purged object must still not be served), and 304 to a matching
 * conditional request. `/status/NNN` answers NNN, uncacheable.
 */
export interface ConformanceOrigin {
  readonly port: number;
  /** Every request received, in order. */
  readonly requests: readonly OriginRequest[];
  /** New content, ETag and Last-Modified for (host, path). */
  bump(host: string, path: string): void;
  /** Extra response headers for (host, path), e.g. Cache-Tag, Surrogate-Key, Vary. */
  respond(host: string, path: string, headers: Readonly<Record<string, string>>): void;
  close(): Promise<void>;
}

export async function startConformanceOrigin(): Promise<ConformanceOrigin> {
  const requests: OriginRequest[] = [];
  const versions = new Map<string, { n: number; modified: number }>();
  const extra = new Map<string, Readonly<Record<string, string>>>();
  const key = (host: string, path: string) => `${host.toLowerCase()}${path}`;
  const server = http.createServer((req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    const path = req.url ?? '/';
    const conditional = req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined;
    requests.push({ method: req.method ?? '', host, path, conditional, headers: req.headers });
    const status = /^\/status\/(\d{3})/.exec(path);
    if (status) {
      res.writeHead(Number(status[1]), { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end(`status ${status[1]}`);
      return;
    }
    const k = key(host, path);
    let v = versions.get(k);
    if (v === undefined) {
      v = { n: 1, modified: Math.floor(Date.now() / 1000) * 1000 - 60_000 };
      versions.set(k, v);
    }
    const headers: Record<string, string> = {
      'cache-control': 'public, max-age=3600, stale-while-revalidate=300',
      etag: `"v${v.n}"`,
      'last-modified': new Date(v.modified).toUTCString(),
      ...extra.get(k),
    };
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    const fresh = inm !== undefined ? inm.split(',').some((t) => t.trim().replace(/^W\//, '') === headers.etag) : ims !== undefined && Date.parse(ims) >= v.modified;
    if (fresh) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const variant = req.headers['x-variant'];
    res.writeHead(200, { ...headers, 'content-type': 'text/plain' });
    res.end(req.method === 'HEAD' ? undefined : `${host}${path} v${v.n}${typeof variant === 'string' ? ` variant=${variant}` : ''}`);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    bump(host, path) {
      const k = key(host, path);
      const v = versions.get(k) ?? { n: 1, modified: Date.now() - 60_000 };
      // Last-Modified has one-second resolution: step it so If-Modified-Since sees the change.
      versions.set(k, { n: v.n + 1, modified: v.modified + 1000 });
    },
    respond(host, path, headers) {
      extra.set(key(host, path), headers);
    },
    close: () =>
      (closed ??= new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      })),
  };
}

// ---- the harness a driver provides ----

export interface GetResult {
  readonly status: number;
  readonly body: string;
  /** HIT / MISS where the cache says (a debug header the harness's config adds). */
  readonly xcache?: string;
  /** Requests the origin received while this GET ran (0: served from cache). */
  readonly originHits: number;
}

export interface DriverHarness {
  /** Started, ready to apply; for a driver that fences itself the lease is already renewed. */
  readonly driver: EdgeDriver;
  /** The origin behind the cache (from startConformanceOrigin). */
  readonly origin: ConformanceOrigin;
  /** A client GET through the cache with this Host. */
  get(host: string, path: string, headers?: Readonly<Record<string, string>>): Promise<GetResult>;
  /**
   * Stops the cache process if running and starts it again on the same address, then does what the
   * agent would do by itself (e.g. renew the lease). Its cache may come back empty.
   */
  restartCache(): Promise<void>;
  /** Optional: stops the cache process (restartCache brings it back); the "cache down" test needs it. */
  stopCache?(): Promise<void>;
  /** Stops everything. Idempotent. */
  close(): Promise<void>;
}

export type MakeHarness = () => Promise<DriverHarness>;

// ---- the suite ----

type Obj = readonly [host: string, path: string, headers?: Readonly<Record<string, string>>];

interface Scenario {
  readonly type: DriverCommand['type'];
  /** Objects the purge must reach, and objects it must leave cached. */
  readonly inside: readonly Obj[];
  readonly outside: readonly Obj[];
  /** Response headers the origin sends per object. */
  readonly respond?: readonly (readonly [host: string, path: string, headers: Record<string, string>])[];
  readonly command: Omit<DriverCommand, 'seq' | 'method'>;
}

let seq = 0;
let hostCounter = 0;
/** Fresh host names per test, so host/all purges of one test never touch another's objects. */
const freshHosts = (): [string, string, string] => {
  const n = ++hostCounter;
  return [`a${n}.conformance.test`, `b${n}.conformance.test`, `c${n}.conformance.test`];
};

function scenarios(): Scenario[] {
  const list: Scenario[] = [];
  {
    const [a, b] = freshHosts();
    list.push({
      type: 'purge_url',
      inside: [[a, '/p/page?x=1']],
      outside: [[a, '/p/page?x=2'], [a, '/p/page'], [b, '/p/page?x=1']],
      command: { type: 'purge_url', hosts: [a], target: `http://${a}/p/page?x=1` },
    });
  }
  {
    const [a, b] = freshHosts();
    list.push({
      type: 'purge_prefix',
      inside: [[a, '/dir/x'], [a, '/dir/sub/y?q=1'], [a, '/dir/']],
      outside: [[a, '/dirx'], [a, '/other/dir/x'], [a, '/'], [b, '/dir/x']],
      command: { type: 'purge_prefix', hosts: [a], target: `http://${a}/dir/` },
    });
  }
  {
    const [a, b] = freshHosts();
    list.push({
      type: 'purge_host',
      inside: [[a, '/x'], [a, '/y/z?q=1']],
      outside: [[b, '/x']],
      command: { type: 'purge_host', hosts: [a], target: a },
    });
  }
  {
    const [a, b, c] = freshHosts();
    list.push({
      type: 'purge_all',
      inside: [[a, '/x'], [b, '/y']],
      outside: [[c, '/x']],
      command: { type: 'purge_all', hosts: [a, b], target: '' },
    });
  }
  {
    const [a, b] = freshHosts();
    list.push({
      type: 'purge_cache_tag',
      inside: [[a, '/t1'], [a, '/t2']],
      outside: [[a, '/t3'], [a, '/t4'], [b, '/t1']],
      respond: [
        [a, '/t1', { 'cache-tag': 'blue, red' }],
        [a, '/t2', { 'surrogate-key': 'other red' }],
        [a, '/t3', { 'cache-tag': 'blue' }],
        [a, '/t4', { 'cache-tag': 'reddish' }],
        [b, '/t1', { 'cache-tag': 'red' }],
      ],
      command: { type: 'purge_cache_tag', hosts: [a], target: 'red' },
    });
  }
  return list;
}

async function warm(h: DriverHarness, objs: readonly Obj[]): Promise<void> {
  for (const [host, path, headers] of objs) {
    const first = await h.get(host, path, headers);
    assert.equal(first.status, 200, `warming ${host}${path}`);
    const second = await h.get(host, path, headers);
    assert.equal(second.originHits, 0, `${host}${path} is cached after one GET (a HIT with no origin request); got ${JSON.stringify(second)}`);
  }
}

const requestsFor = (h: DriverHarness, host: string, path: string, since: number): OriginRequest[] =>
  h.origin.requests.slice(since).filter((r) => r.host === host && r.path === path && r.method === 'GET');

/**
 * After a purge: the object's content changed at the origin (bump), so a client must get the new content
 * — refetched without a condition after a delete, with one after an invalidate — and it is cached again.
 */
async function assertPurged(h: DriverHarness, [host, path, headers]: Obj, report: DriverReport, expectBody: (body: string) => boolean): Promise<void> {
  const since = h.origin.requests.length;
  const r = await h.get(host, path, headers);
  assert.equal(r.status, 200);
  assert.ok(expectBody(r.body), `${host}${path} after the purge: got the old copy ${JSON.stringify(r.body)}`);
  const seen = requestsFor(h, host, path, since);
  assert.ok(seen.length >= 1, `${host}${path} reached the origin after the purge`);
  if (report.executedAs === 'invalidate') assert.ok(seen.some((s) => s.conditional), `${host}${path}: invalidate revalidates with a conditional request`);
  else assert.ok(seen.every((s) => !s.conditional), `${host}${path}: delete refetches without a condition (nothing kept to revalidate)`);
  const again = await h.get(host, path, headers);
  assert.equal(again.originHits, 0, `${host}${path} is cached again after its refetch`);
}

async function assertStillCached(h: DriverHarness, [host, path, headers]: Obj): Promise<void> {
  const r = await h.get(host, path, headers);
  assert.equal(r.originHits, 0, `${host}${path} is outside the purge and must stay a cache hit; got ${JSON.stringify(r)}`);
  assert.match(r.body, / v1( |$)/);
}

const cmd = (c: Omit<DriverCommand, 'seq' | 'method'>, method: DriverCommand['method']): DriverCommand => ({ ...c, seq: ++seq, method });

/** Runs the suite against a driver; makeHarness is called once, tests share it (each uses its own hosts). */
export function driverConformance(name: string, makeHarness: MakeHarness): void {
  describe(`EdgeDriver conformance: ${name}`, () => {
    let h: DriverHarness;
    before(async () => {
      h = await makeHarness();
    });
    after(async () => {
      await h?.close();
    });

    for (const method of ['delete', 'invalidate'] as const) {
      for (const s of scenarios()) {
        it(`${s.type} × ${method}: purged objects are refetched or revalidated, never served as they were; the rest stay hits`, async () => {
          for (const [host, path, headers] of s.respond ?? []) h.origin.respond(host, path, headers);
          await warm(h, [...s.inside, ...s.outside]);
          for (const [host, path] of s.inside) h.origin.bump(host, path);
          const report = await h.driver.apply(cmd(s.command, method));
          assert.ok(report.executedAs === 'delete' || report.executedAs === 'invalidate');
          if (method === 'delete') assert.equal(report.executedAs, 'delete', 'a delete is never executed softly');
          if (report.executedAs !== method) assert.ok(report.note, 'a report that differs from the command says why');
          if (report.matched !== undefined) assert.ok(report.matched >= s.inside.length, `matched ${report.matched} ≥ ${s.inside.length}`);
          for (const o of s.inside) await assertPurged(h, o, report, (b) => / v2( |$)/.test(b));
          for (const o of s.outside) await assertStillCached(h, o);
        });
      }
    }

    for (const method of ['delete', 'invalidate'] as const) {
      it(`purge_url × ${method} reaches every Vary variant of the URL`, async () => {
        const [a] = freshHosts();
        h.origin.respond(a, '/v', { vary: 'X-Variant' });
        const variants = ['one', 'two', 'three'].map((v): Obj => [a, '/v', { 'x-variant': v }]);
        await warm(h, variants);
        h.origin.bump(a, '/v');
        const report = await h.driver.apply(cmd({ type: 'purge_url', hosts: [a], target: `http://${a}/v` }, method));
        if (report.matched !== undefined) assert.ok(report.matched >= 3, `matched ${report.matched} ≥ 3 variants`);
        for (const o of variants) await assertPurged(h, o, report, (b) => b.startsWith(`${a}/v v2 variant=${o[2]?.['x-variant']}`));
      });
    }

    it('invalidate of an unchanged object: one 304 revalidation, the same content, then hits again', async () => {
      const [a] = freshHosts();
      await warm(h, [[a, '/same']]);
      const report = await h.driver.apply(cmd({ type: 'purge_url', hosts: [a], target: `http://${a}/same` }, 'invalidate'));
      const since = h.origin.requests.length;
      const r = await h.get(a, '/same');
      assert.equal(r.body, `${a}/same v1`);
      const seen = requestsFor(h, a, '/same', since);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]?.conditional, report.executedAs === 'invalidate');
      assert.equal((await h.get(a, '/same')).originHits, 0);
    });

    it('re-applying a purge is harmless (idempotent: a replay after a crash before the ack)', async () => {
      const [a] = freshHosts();
      await warm(h, [[a, '/r/1'], [a, '/keep']]);
      h.origin.bump(a, '/r/1');
      for (const c of [
        cmd({ type: 'purge_prefix', hosts: [a], target: `http://${a}/r/` }, 'delete'),
        cmd({ type: 'purge_url', hosts: [a], target: `http://${a}/r/1` }, 'invalidate'),
      ]) {
        const first = await h.driver.apply(c);
        const replay = await h.driver.apply(c);
        assert.equal(replay.executedAs, first.executedAs);
      }
      const r = await h.get(a, '/r/1');
      assert.equal(r.body, `${a}/r/1 v2`);
      assert.equal((await h.get(a, '/r/1')).originHits, 0);
      await assertStillCached(h, [a, '/keep']);
    });

    it('applyBatch (when offered) has the effect of applying each purge in order, with one report each', async (t) => {
      if (h.driver.applyBatch === undefined) {
        t.skip(`${name} does not offer applyBatch`);
        return;
      }
      const [a, b] = freshHosts();
      h.origin.respond(a, '/tagged', { 'cache-tag': 'batch' });
      const urls = Array.from({ length: 20 }, (_, i): Obj => [a, `/u/${i}`]);
      await warm(h, [...urls, [a, '/tagged'], [b, '/p/x'], [b, '/keep']]);
      for (const [host, path] of [...urls, [a, '/tagged'], [b, '/p/x']] as const) h.origin.bump(host, path);
      const commands = [
        ...urls.map(([host, path]) => cmd({ type: 'purge_url', hosts: [host], target: `http://${host}${path}` }, 'delete')),
        cmd({ type: 'purge_cache_tag', hosts: [a], target: 'batch' }, 'delete'),
        cmd({ type: 'purge_prefix', hosts: [b], target: `http://${b}/p/` }, 'delete'),
      ];
      const reports = await h.driver.applyBatch(commands);
      assert.equal(reports.length, commands.length);
      for (const r of reports) assert.equal(r.executedAs, 'delete');
      for (const [host, path] of [...urls, [a, '/tagged'], [b, '/p/x']] as const) assert.match((await h.get(host, path)).body, / v2$/);
      await assertStillCached(h, [b, '/keep']);
    });

    it('prefetch warms the cache (with the given headers) and reports origin failures as originPullFailed', async () => {
      const [a] = freshHosts();
      const since = h.origin.requests.length;
      const ok = await h.driver.prefetch(cmd({ type: 'prefetch_url', hosts: [a], target: `http://${a}/warm?x=1`, headers: { 'X-Prefetch-Probe': 'yes' } }, 'delete'));
      assert.deepEqual(ok, { ok: true });
      const seen = requestsFor(h, a, '/warm?x=1', since);
      assert.ok(seen.length >= 1 && seen[0]?.headers['x-prefetch-probe'] === 'yes', 'the prefetch reached the origin with its headers');
      const r = await h.get(a, '/warm?x=1');
      assert.equal(r.originHits, 0, 'a prefetched URL is a hit');
      for (const status of [404, 503]) {
        const failed = await h.driver.prefetch(cmd({ type: 'prefetch_url', hosts: [a], target: `http://${a}/status/${status}` }, 'delete'));
        assert.equal(failed.ok, false);
        assert.equal(!failed.ok && failed.failType, 'originPullFailed');
      }
    });

    it('dropAll empties the whole cache', async () => {
      const [a, b] = freshHosts();
      const objs: Obj[] = [[a, '/1'], [a, '/2/3'], [b, '/4']];
      await warm(h, objs);
      for (const [host, path] of objs) h.origin.bump(host, path);
      await h.driver.dropAll();
      for (const o of objs) await assertPurged(h, o, { executedAs: 'delete' }, (body) => / v2$/.test(body));
    });

    it('with the cache down a purge fails retryable or has taken effect once the cache is back; prefetch fails retryable', async (t) => {
      if (h.stopCache === undefined) {
        t.skip('the harness has no stopCache()');
        return;
      }
      // A driver may purge what the cache keeps on disk with the cache process down (nginx's index does):
      // that is only allowed when the restarted cache no longer serves the purged copies.
      const [a] = freshHosts();
      h.origin.respond(a, '/tag', { 'cache-tag': 't' });
      const objs: Obj[] = [[a, '/x'], [a, '/x/y'], [a, '/tag'], [a, '/keep']];
      await warm(h, objs);
      for (const [host, path] of objs) h.origin.bump(host, path);
      const commands = [
        cmd({ type: 'purge_url', hosts: [a], target: `http://${a}/x` }, 'delete'),
        cmd({ type: 'purge_prefix', hosts: [a], target: `http://${a}/x/` }, 'delete'),
        cmd({ type: 'purge_cache_tag', hosts: [a], target: 't' }, 'delete'),
      ];
      const failed: DriverCommand[] = [];
      await h.stopCache();
      try {
        for (const c of commands) {
          try {
            await h.driver.apply(c);
          } catch (e) {
            assert.ok(e instanceof DriverError && e.retryable, `${c.type} with the cache down: ${String(e)}`);
            failed.push(c);
          }
        }
        await assert.rejects(h.driver.prefetch(cmd({ type: 'prefetch_url', hosts: [a], target: `http://${a}/x` }, 'delete')), (e: unknown) => e instanceof DriverError && e.retryable);
      } finally {
        await h.restartCache();
      }
      // What the agent does after a failure: apply again, now that the cache is back.
      for (const c of failed) await h.driver.apply(c);
      for (const o of objs.slice(0, 3)) assert.match((await h.get(...o)).body, / v2$/, `${o[1]} purged once the cache is back`);
      await warm(h, [[a, '/after']]);
      h.origin.bump(a, '/after');
      const report = await h.driver.apply(cmd({ type: 'purge_url', hosts: [a], target: `http://${a}/after` }, 'delete'));
      await assertPurged(h, [a, '/after'], report, (b) => / v2$/.test(b));
    });
  });
}
