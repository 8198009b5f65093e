// The cache engine without HTTP: seq stamps, lazy verdicts, in-flight purges, bounded rules.
import assert from 'node:assert/strict';
import test from 'node:test';
import { EdgeCache, type CachedObject, type Fetch } from '../../src/edge/edge-cache.ts';
import type { EdgeCommand } from '../../src/edge/edge-command.ts';
import { ManualClock } from '../../src/shared/clock.ts';

const H = 'a.test';

/** Completes fetch `f` of `path` with a cacheable 200, as the proxy would once the body is in. */
function complete(cache: EdgeCache, f: Fetch, path: string): CachedObject | undefined {
  const requestHeaders = { host: H };
  const responseHeaders = { 'cache-control': 'max-age=60', etag: '"1"' };
  return cache.store(f, {
    host: H,
    path,
    status: 200,
    policy: cache.newPolicy({ url: path, method: 'GET', headers: requestHeaders }, { status: 200, headers: responseHeaders }),
    body: Buffer.from(`body of ${path}`),
    tags: [],
    responseHeaders,
    requestHeaders,
  });
}

function setup(options: { maxBytes?: number; maxRules?: number } = {}): { cache: EdgeCache; put: (path: string) => CachedObject } {
  const cache = new EdgeCache({
    clock: new ManualClock(),
    maxBytes: options.maxBytes ?? 1 << 20,
    ...(options.maxRules === undefined ? {} : { maxRules: options.maxRules }),
  });
  const put = (path: string): CachedObject => {
    const f = cache.beginFetch(H, path);
    const obj = complete(cache, f, path);
    cache.endFetch(f);
    assert.ok(obj !== undefined);
    return obj;
  };
  return { cache, put };
}

let seq = 0;
const c = (type: EdgeCommand['type'], method: EdgeCommand['method'], target: string, hosts: string[] = [H]): EdgeCommand => ({
  seq: ++seq,
  type,
  method,
  target,
  hosts,
});

test('purge_url counts every Vary variant it hits; delete removes, invalidate flags', () => {
  const { cache, put } = setup();
  put('/a');
  assert.deepEqual(cache.apply(c('purge_url', 'invalidate', 'http://a.test/a')), { executedAs: 'invalidate', matched: 1 });
  assert.equal(cache.lookup(H, '/a', {})?.invalidated, true);
  assert.deepEqual(cache.apply(c('purge_url', 'delete', 'http://A.test:80/a#frag')), { executedAs: 'delete', matched: 1 });
  assert.equal(cache.lookup(H, '/a', {}), undefined);
  assert.deepEqual(cache.apply(c('purge_url', 'delete', 'http://a.test/a')), { executedAs: 'delete', matched: 0 });
});

test('rule purges are lazy: the object is dropped or flagged when next looked up', () => {
  const { cache, put } = setup();
  put('/d/1');
  put('/d/2');
  put('/e/1');
  assert.deepEqual(cache.apply(c('purge_prefix', 'delete', 'http://a.test/d/')), { executedAs: 'delete' }, 'rule purges count nothing at apply time: no matched');
  assert.equal(cache.stats().objects, 3, 'nothing walked at apply time');
  assert.equal(cache.lookup(H, '/d/1', {}), undefined);
  assert.equal(cache.stats().objects, 2);
  assert.equal(cache.lookup(H, '/e/1', {})?.invalidated, false);
  cache.apply(c('purge_host', 'invalidate', 'a.test'));
  assert.equal(cache.lookup(H, '/e/1', {})?.invalidated, true);
});

test('an object fetched while a purge is applied keeps its start stamp and is affected (conservative)', () => {
  const { cache } = setup();
  const f = cache.beginFetch(H, '/slow');
  assert.equal(f.startSeq, cache.appliedSeq);
  cache.apply(c('purge_prefix', 'invalidate', 'http://a.test/'));
  const obj = complete(cache, f, '/slow');
  cache.endFetch(f);
  assert.ok(obj !== undefined);
  assert.equal(cache.lookup(H, '/slow', {})?.invalidated, true);
});

test('a purge_url delete applied while the key is in flight keeps the response out of the cache', () => {
  const { cache } = setup();
  const f = cache.beginFetch(H, '/x');
  cache.apply(c('purge_url', 'delete', 'http://a.test/x'));
  assert.equal(f.purged, 'delete');
  const obj = complete(cache, f, '/x');
  assert.equal(obj, undefined);
});

test('replayed seqs are ignored and do not move the high-water mark back', () => {
  const { cache } = setup();
  const first = c('purge_all', 'delete', '');
  cache.apply(first);
  assert.deepEqual(cache.apply(first), { executedAs: 'delete', matched: 0, alreadyApplied: true });
  assert.equal(cache.appliedSeq, first.seq);
  assert.equal(cache.stats().rules, 1);
});

test('an unparsable URL target falls back to purging its hosts', () => {
  const { cache, put } = setup();
  put('/a');
  cache.apply(c('purge_prefix', 'delete', 'not a url'));
  assert.equal(cache.lookup(H, '/a', {}), undefined);
});

test('dropAll empties everything and keeps fetches in flight from storing', () => {
  const { cache, put } = setup();
  put('/a');
  cache.apply(c('purge_prefix', 'invalidate', 'http://a.test/z/'));
  const f = cache.beginFetch(H, '/b');
  assert.equal(cache.dropAll(1000), 1);
  assert.deepEqual([cache.stats().objects, cache.stats().rules, cache.appliedSeq], [0, 0, 1000]);
  const late = complete(cache, f, '/b');
  assert.equal(late, undefined);
  seq = Math.max(seq, 1000);
});

test('rules stay bounded: the sweep re-stamps old objects so compaction can retire the rules', () => {
  const { cache, put } = setup();
  const old = put('/popular');
  for (let i = 0; i < 500; i++) cache.apply(c('purge_prefix', 'delete', `http://a.test/gone${i}/`));
  assert.equal(cache.stats().rules, 500);
  // Compaction alone cannot retire them: /popular is stamped before all of them.
  assert.equal(cache.compact(), 0);
  const { checked, retired } = cache.maintain();
  assert.equal(checked, 1);
  assert.equal(retired, 500);
  assert.equal(cache.stats().rules, 0);
  assert.equal(cache.lookup(H, '/popular', {}), old, 'untouched by the unrelated purges');
});

test('a lookup re-stamps the object, so a hot object does not pin old rules', () => {
  const { cache, put } = setup();
  put('/hot');
  for (let i = 0; i < 10; i++) cache.apply(c('purge_prefix', 'invalidate', `http://a.test/cold${i}/`));
  assert.equal(cache.lookup(H, '/hot', {})?.invalidated, false);
  assert.equal(cache.compact(), 10);
});

test('the rule cap coalesces instead of growing, and never un-purges', () => {
  const { cache, put } = setup({ maxRules: 50 });
  put('/victim/x');
  put('/bystander');
  cache.apply(c('purge_prefix', 'delete', 'http://a.test/victim/'));
  for (let i = 0; i < 200; i++) cache.apply(c('purge_prefix', 'invalidate', `http://a.test/p${i}/`));
  assert.ok(cache.stats().rules <= 50, `rules ${cache.stats().rules}`);
  assert.ok(cache.stats().coalesced > 0);
  assert.equal(cache.lookup(H, '/victim/x', {}), undefined, 'the delete still applies');
  // The price of the fallback: the whole host is purged with the strongest coalesced method…
  assert.equal(cache.lookup(H, '/bystander', {}), undefined);
  // …but what is stored afterwards is not affected.
  put('/late');
  assert.equal(cache.lookup(H, '/late', {})?.invalidated, false);
});

test('LRU eviction also releases the stamps, so evicted objects do not pin rules', () => {
  const { cache, put } = setup({ maxBytes: 4 * 700 });
  put('/1');
  cache.apply(c('purge_prefix', 'delete', 'http://a.test/zzz/'));
  for (let i = 2; i <= 8; i++) put(`/${i}`);
  assert.ok(cache.stats().evictions > 0);
  assert.equal(cache.lookup(H, '/1', {}), undefined);
  assert.equal(cache.compact(), 1);
});
