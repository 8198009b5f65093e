// Edge cache benchmarks (DESIGN invariant 5, PEERS §4.4 item 3): purge apply cost against the cache size,
// and hit-lookup cost with many live prefix rules. Run: `npx node bench/edge-bench.ts`.

import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { EdgeCache, type CachedObject } from '../src/edge/edge-cache.ts';
import type { EdgeCommand } from '../src/edge/edge-command.ts';
import { EdgeProxy } from '../src/edge/edge-proxy.ts';
import { ManualClock } from '../src/shared/clock.ts';

const HOST = 'bench.test';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))] ?? Number.NaN;
};

function newCache(restampOnLookup = true): EdgeCache {
  // Byte budget far above what is inserted: these benchmarks measure lookups and purges, not eviction.
  return new EdgeCache({ clock: new ManualClock(), maxBytes: Number.MAX_SAFE_INTEGER, restampOnLookup });
}

/** Fills `cache` with `n` objects through the internal insertion API (no HTTP), stamped at seq 0. */
function fill(cache: EdgeCache, n: number, realPolicies: boolean, pathOf: (i: number) => string): void {
  const reqHeaders = { host: HOST };
  const resHeaders = { 'cache-control': 'max-age=86400', etag: '"b"', 'content-type': 'text/plain' };
  const shared = cache.newPolicy({ url: '/', method: 'GET', headers: reqHeaders }, { status: 200, headers: resHeaders });
  const body = Buffer.from('benchmark body');
  for (let i = 0; i < n; i++) {
    const path = pathOf(i);
    const obj: CachedObject = {
      key: HOST + path,
      host: HOST,
      path,
      status: 200,
      // A million real policies would cost gigabytes; purge cost does not look at them.
      policy: realPolicies ? cache.newPolicy({ url: path, method: 'GET', headers: reqHeaders }, { status: 200, headers: resHeaders }) : shared,
      body,
      tags: [],
      varyNames: [],
      varyValues: [],
      stamp: cache.appliedSeq,
      invalidated: false,
    };
    cache.insert(obj, 64);
  }
}

export interface ApplyBench {
  readonly objects: number;
  readonly purges: number;
  readonly prefixMedianUs: number;
  readonly prefixP99Us: number;
  readonly urlDeleteMedianUs: number;
  readonly rulesAfter: number;
}

/** (a) Time to apply one prefix purge (and one URL delete) with `objects` cached. */
export function benchPrefixApply(objects: number, purges = 2000): ApplyBench {
  const cache = newCache();
  fill(cache, objects, false, (i) => `/static/${i % 1000}/${i}.js`);
  let seq = 0;
  const next = (type: EdgeCommand['type'], target: string, method: EdgeCommand['method']): EdgeCommand => ({
    seq: ++seq,
    type,
    method,
    target,
    hosts: [HOST],
  });
  // Warm-up (JIT), then measure each apply on its own.
  for (let i = 0; i < 200; i++) cache.apply(next('purge_prefix', `http://${HOST}/warm/${i}/`, 'invalidate'));
  const prefix: number[] = [];
  for (let i = 0; i < purges; i++) {
    const c = next('purge_prefix', `http://${HOST}/static/${i % 1000}/`, i % 2 === 0 ? 'invalidate' : 'delete');
    const t0 = performance.now();
    cache.apply(c);
    prefix.push((performance.now() - t0) * 1000);
  }
  const url: number[] = [];
  for (let i = 0; i < purges; i++) {
    const c = next('purge_url', `http://${HOST}/static/${i % 1000}/${i}.js`, 'delete');
    const t0 = performance.now();
    cache.apply(c);
    url.push((performance.now() - t0) * 1000);
  }
  return {
    objects,
    purges,
    prefixMedianUs: median(prefix),
    prefixP99Us: quantile(prefix, 0.99),
    urlDeleteMedianUs: median(url),
    rulesAfter: cache.stats().rules,
  };
}

export interface LookupBench {
  readonly objects: number;
  readonly rules: number;
  /** cache.lookup() alone (Vary match + rule verdict), ns per lookup, median over batches. */
  readonly lookupNoRulesNs: number;
  readonly lookupWithRulesNs: number;
  /** The whole in-process hit path: lookup + RFC 9111 freshness (evaluateRequest) + LRU touch. */
  readonly hitPathNoRulesNs: number;
  readonly hitPathWithRulesNs: number;
  /** Same with re-stamping on (the default): after a first check, objects skip the rule walk. */
  readonly hitPathWithRulesRestampNs: number;
}

/**
 * (b) Hit lookup latency with `rules` live prefix rules vs none. Worst case: every object is stamped
 * before every rule and re-stamping is off, so each lookup walks the radix tree; the rules share the
 * objects' leading path (`/static/f<i>x` vs objects `/static/f<j>.js`) so the walk goes deep but never
 * matches. The two caches are measured in alternating batches to cancel drift.
 */
export function benchLookup(objects = 10_000, rules = 10_000, batches = 300, batchSize = 1000): LookupBench {
  const pathOf = (i: number): string => `/static/f${i}.js`;
  const plain = newCache(false);
  const ruled = newCache(false);
  const restamped = newCache(true);
  for (const c of [plain, ruled, restamped]) fill(c, objects, true, pathOf);
  for (const c of [ruled, restamped]) {
    for (let i = 1; i <= rules; i++) {
      c.apply({ seq: i, type: 'purge_prefix', method: i % 2 ? 'invalidate' : 'delete', target: `http://${HOST}/static/f${i}x`, hosts: [HOST] });
    }
  }
  // Pre-built requests, random order, same for every cache.
  const order: number[] = [];
  let x = 7;
  for (let i = 0; i < batchSize; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    order.push(x % objects);
  }
  const reqs = order.map((i) => {
    const path = pathOf(i);
    const headers = { host: HOST, 'user-agent': 'bench', accept: '*/*' };
    return { path, headers, cacheReq: { url: path, method: 'GET', headers } };
  });
  let sink = 0;
  const lookupOnly = (c: EdgeCache): number => {
    const t0 = performance.now();
    for (const r of reqs) if (c.lookup(HOST, r.path, r.headers) !== undefined) sink++;
    return ((performance.now() - t0) * 1e6) / reqs.length;
  };
  const hitPath = (c: EdgeCache): number => {
    const t0 = performance.now();
    for (const r of reqs) {
      const obj = c.lookup(HOST, r.path, r.headers);
      if (obj === undefined || obj.invalidated) throw new Error(`bench object ${r.path} should be a hit`);
      const ev = obj.policy.evaluateRequest(r.cacheReq);
      if (ev.revalidation !== undefined) throw new Error('bench object should be fresh');
      c.touch(obj);
      sink += ev.response.headers.age === undefined ? 0 : 1;
    }
    return ((performance.now() - t0) * 1e6) / reqs.length;
  };
  for (let w = 0; w < 20; w++) for (const c of [plain, ruled, restamped]) (lookupOnly(c), hitPath(c));
  const m = { lp: [] as number[], lr: [] as number[], hp: [] as number[], hr: [] as number[], hs: [] as number[] };
  // Rotate the order every batch so no configuration always runs right after another.
  const runs: (() => void)[] = [
    () => m.lp.push(lookupOnly(plain)),
    () => m.lr.push(lookupOnly(ruled)),
    () => m.hp.push(hitPath(plain)),
    () => m.hr.push(hitPath(ruled)),
    () => m.hs.push(hitPath(restamped)),
  ];
  for (let b = 0; b < batches; b++) for (let k = 0; k < runs.length; k++) runs[(b + k) % runs.length]?.();
  if (sink < 0) console.log(sink);
  if (ruled.stats().rules !== rules) throw new Error(`rules were retired during the bench: ${ruled.stats().rules}`);
  return {
    objects,
    rules,
    lookupNoRulesNs: median(m.lp),
    lookupWithRulesNs: median(m.lr),
    hitPathNoRulesNs: median(m.hp),
    hitPathWithRulesNs: median(m.hr),
    hitPathWithRulesRestampNs: median(m.hs),
  };
}

export interface HttpLookupBench {
  readonly objects: number;
  readonly rules: number;
  readonly requests: number;
  readonly noRulesMedianUs: number;
  readonly withRulesMedianUs: number;
}

/** (b, over HTTP) Sequential keep-alive GET hits against two proxies (no rules / `rules` rules), alternating. */
export async function benchHttpLookup(objects = 10_000, rules = 10_000, requests = 4000): Promise<HttpLookupBench> {
  const pathOf = (i: number): string => `/static/f${i}.js`;
  const proxies: EdgeProxy[] = [];
  const ports: number[] = [];
  for (const withRules of [false, true]) {
    const p = new EdgeProxy({
      listen: { host: '127.0.0.1', port: 0 },
      domains: [{ host: HOST, origin: 'http://127.0.0.1:1' }],
      maxBytes: Number.MAX_SAFE_INTEGER,
      clock: new ManualClock(),
      leaseMs: 3_600_000,
      maintenanceIntervalMs: 0,
    });
    fill(p.cache, objects, true, pathOf);
    if (withRules) {
      for (let i = 1; i <= rules; i++) {
        p.apply({ seq: i, type: 'purge_prefix', method: 'invalidate', target: `http://${HOST}/static/f${i}x`, hosts: [HOST] });
      }
    }
    p.renewLease();
    ports.push((await p.start()).port);
    proxies.push(p);
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (port: number, path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      http
        .get({ host: '127.0.0.1', port, path, headers: { host: HOST }, agent }, (res) => {
          if (res.headers['x-cache'] !== 'HIT') reject(new Error(`expected a HIT, got ${String(res.headers['x-cache'])}`));
          res.resume();
          res.on('end', () => resolve((performance.now() - t0) * 1000));
        })
        .on('error', reject);
    });
  const lat: [number[], number[]] = [[], []];
  try {
    for (let i = 0; i < 500; i++) for (const port of ports) await get(port, pathOf(i % objects)); // warm-up
    for (let i = 0; i < requests; i++) {
      const path = pathOf((i * 7919) % objects);
      for (let k = 0; k < 2; k++) {
        const port = ports[k];
        if (port !== undefined) lat[k]?.push(await get(port, path));
      }
    }
  } finally {
    agent.destroy();
    await Promise.all(proxies.map((p) => p.close()));
  }
  return { objects, rules, requests, noRulesMedianUs: median(lat[0]), withRulesMedianUs: median(lat[1]) };
}

export interface EdgeBenchReport {
  readonly apply: readonly ApplyBench[];
  readonly lookup: LookupBench;
  readonly http: HttpLookupBench;
}

export async function runEdgeBench(): Promise<EdgeBenchReport> {
  const apply = [benchPrefixApply(10_000), benchPrefixApply(1_000_000)];
  const lookup = benchLookup();
  const httpResult = await benchHttpLookup();
  return { apply, lookup, http: httpResult };
}

function print(r: EdgeBenchReport): void {
  const f = (n: number, d = 2): string => n.toFixed(d);
  console.log('(a) apply one purge (median over 2000, each timed alone; bar: prefix < 1 ms)');
  for (const a of r.apply) {
    console.log(
      `  ${String(a.objects).padStart(9)} objects: prefix median ${f(a.prefixMedianUs)} µs, p99 ${f(a.prefixP99Us)} µs;` +
        ` url delete median ${f(a.urlDeleteMedianUs)} µs; live rules after ${a.rulesAfter}`,
    );
  }
  const l = r.lookup;
  const pct = (a: number, b: number): string => `${a >= b ? '+' : ''}${f(((a - b) / b) * 100, 1)} %`;
  console.log(`(b) hit lookup, ${l.objects} objects, ${l.rules} live prefix rules vs none (median ns per lookup; bar: <= +10 %)`);
  console.log(`  lookup only:        none ${f(l.lookupNoRulesNs, 0)} ns, rules ${f(l.lookupWithRulesNs, 0)} ns (${pct(l.lookupWithRulesNs, l.lookupNoRulesNs)})`);
  console.log(`  full hit path:      none ${f(l.hitPathNoRulesNs, 0)} ns, rules ${f(l.hitPathWithRulesNs, 0)} ns (${pct(l.hitPathWithRulesNs, l.hitPathNoRulesNs)})`);
  console.log(`  full hit, restamp:  rules ${f(l.hitPathWithRulesRestampNs, 0)} ns (${pct(l.hitPathWithRulesRestampNs, l.hitPathNoRulesNs)})`);
  const h = r.http;
  console.log(
    `  over HTTP (${h.requests} keep-alive GETs each): none ${f(h.noRulesMedianUs, 1)} µs, rules ${f(h.withRulesMedianUs, 1)} µs` +
      ` (${pct(h.withRulesMedianUs, h.noRulesMedianUs)})`,
  );
}

if (import.meta.main) print(await runEdgeBench());
