// Quotas per account and purge type, shared by every API: whole requests admitted or refused, the
// quota actions report live counters, and the day resets at 00:00 +08:00 (TENCENT-API §3.1-§3.5, §4.5).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/shared/clock.ts';
import { ACME, GLOBEX, startControlPlane } from '../helpers/control-plane.ts';
import { cdnClient, sdkError, teoClient } from '../helpers/sdk.ts';
import { assertError, assertOk, CDN, config, rawCall, snapshot, TEO } from './fixtures.ts';

const tiny = config((a) =>
  a.appId === ACME.appId
    ? {
        quotas: {
          purge_url: { batch: 3, daily: 5 },
          purge_prefix: { batch: 2, daily: 3 },
          purge_host: { batch: 2, daily: 2 },
          purge_all: { batch: 1, daily: 2 },
          purge_cache_tag: { batch: 2, daily: 3 },
          prefetch_url: { batch: 2, daily: 3 },
        },
      }
    : {},
);

const urls = (n: number, p = 'u') => Array.from({ length: n }, (_, i) => `http://${ACME.host}/${p}/${i}`);

describe('quota exhaustion', () => {
  test('URL purges: batch and daily limits shared by EdgeOne and CDN, whole request refused, live counters', async (t) => {
    const s = await startControlPlane(t, tiny);
    const teo = teoClient(s.endpoint, ACME.secretId, ACME.secretKey);
    const cdn = cdnClient(s.endpoint, ACME.secretId, ACME.secretKey, 'HmacSHA1');
    const left = async () => {
      const a = (await teo.DescribeContentQuota({ ZoneId: ACME.zoneId })).PurgeQuota.find((x: { Type: string }) => x.Type === 'purge_url');
      const b = (await cdn.DescribePurgeQuota({})).UrlPurge[0];
      assert.equal(a.DailyAvailable, b.Available, 'both quota actions read the same counter');
      assert.deepEqual([a.Batch, a.Daily, b.Batch, b.Total], [3, 5, 3, 5]);
      return a.DailyAvailable as number;
    };
    assert.equal(await left(), 5);
    await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: urls(3, 'a') });
    assert.equal(await left(), 2);

    const before = await snapshot(s, ACME.appId);
    assert.equal((await sdkError(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: urls(4, 'b') }))).code, 'LimitExceeded.BatchQuota');
    assert.equal((await sdkError(cdn.PurgeUrlsCache({ Urls: urls(4, 'b') }))).code, 'LimitExceeded.CdnPurgeUrlExceedBatchLimit');
    // 3 wanted, 2 left: the whole request is refused, not 2 of its 3 URLs.
    assert.equal((await sdkError(cdn.PurgeUrlsCache({ Urls: urls(3, 'c') }))).code, 'LimitExceeded.CdnPurgeUrlExceedDayLimit');
    assert.equal((await sdkError(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: urls(3, 'c') }))).code, 'LimitExceeded.DailyQuota');
    assert.deepEqual(await snapshot(s, ACME.appId), before);
    assert.equal(await left(), 2);

    await cdn.PurgeUrlsCache({ Urls: urls(2, 'd') });
    assert.equal(await left(), 0);
    assert.equal((await sdkError(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: urls(1, 'e') }))).code, 'LimitExceeded.DailyQuota');
    // Other types and other accounts have their own counters.
    await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_host', Targets: [ACME.host] });
    await teoClient(s.endpoint, GLOBEX.secretId, GLOBEX.secretKey).CreatePurgeTask({ ZoneId: GLOBEX.zoneId, Type: 'purge_url', Targets: [`http://${GLOBEX.host}/1`] });
  });

  test('directory, host, all, tag and prefetch quotas, with each product\'s codes', async (t) => {
    const s = await startControlPlane(t, tiny);
    const teo = teoClient(s.endpoint, ACME.secretId, ACME.secretKey);
    const cdn = cdnClient(s.endpoint, ACME.secretId, ACME.secretKey, 'HmacSHA256');
    const dirs = (n: number, p: string) => urls(n, p).map((u) => `${u}/`);
    const code = async (p: Promise<unknown>) => (await sdkError(p)).code;

    // Directories: batch 2, daily 3.
    assert.equal(await code(cdn.PurgePathCache({ Paths: dirs(3, 'a'), FlushType: 'flush' })), 'LimitExceeded.CdnPurgePathExceedBatchLimit');
    await cdn.PurgePathCache({ Paths: dirs(2, 'b'), FlushType: 'flush' });
    assert.equal(await code(cdn.PurgePathCache({ Paths: dirs(2, 'c'), FlushType: 'delete' })), 'LimitExceeded.CdnPurgePathExceedDayLimit');
    assert.equal(await code(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: dirs(2, 'c') })), 'LimitExceeded.DailyQuota');
    await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: dirs(1, 'd') });
    assert.equal((await cdn.DescribePurgeQuota({})).PathPurge[0].Available, 0);

    // Prefetch: batch 2, daily 3.
    assert.equal(await code(cdn.PushUrlsCache({ Urls: urls(3, 'p') })), 'LimitExceeded.CdnPushExceedBatchLimit');
    assert.equal(await code(teo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: urls(3, 'p') })), 'LimitExceeded.BatchQuota');
    await teo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: urls(2, 'p') });
    assert.equal(await code(cdn.PushUrlsCache({ Urls: urls(2, 'q') })), 'LimitExceeded.CdnPushExceedDayLimit');
    await cdn.PushUrlsCache({ Urls: urls(1, 'q') });
    assert.equal((await cdn.DescribePushQuota({})).UrlPush[0].Available, 0);

    // purge_all counts once per request (daily 2), whatever the zone's size.
    await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_all' });
    await teo.CreatePurgeTask({ ZoneId: ACME.zoneId2, Type: 'purge_all' });
    assert.equal(await code(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_all' })), 'LimitExceeded.DailyQuota');

    // Hosts: batch 2, daily 2. Tags: batch 2, daily 3.
    assert.equal(await code(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_host', Targets: [ACME.host, ACME.host2, ACME.host3] })), 'LimitExceeded.BatchQuota');
    await teo.CreatePurgeTask({ ZoneId: '*', Type: 'purge_host', Targets: [ACME.host, ACME.host3] });
    assert.equal(await code(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_host', Targets: [ACME.host2] })), 'LimitExceeded.DailyQuota');
    await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_cache_tag', Targets: ['a', 'b'] });
    assert.equal(await code(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_cache_tag', Targets: ['c', 'd'] })), 'LimitExceeded.DailyQuota');

    const q = await teo.DescribeContentQuota({ ZoneId: '*' });
    const avail = Object.fromEntries([...q.PurgeQuota, ...q.PrefetchQuota].map((x: { Type: string; DailyAvailable: number }) => [x.Type, x.DailyAvailable]));
    assert.deepEqual(avail, { purge_url: 5, purge_prefix: 0, purge_host: 0, purge_all: 0, purge_cache_tag: 1, prefetch_url: 0 });
  });
});

describe('quota day', () => {
  test('the daily counters reset at 00:00 +08:00, not at UTC midnight', async (t) => {
    // 2026-03-10 23:59:58 in +08:00.
    const clock = new ManualClock(Date.UTC(2026, 2, 10, 15, 59, 58));
    const s = await startControlPlane(t, tiny, { clock });
    const purge = (n: number, p: string) =>
      rawCall(s, ACME, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: urls(n, p) } }, clock);
    const available = async () => {
      const r = assertOk(await rawCall(s, ACME, { action: 'DescribePurgeQuota', version: CDN }, clock));
      return (r.UrlPurge as Array<{ Available: number }>)[0]!.Available;
    };
    assertOk(await purge(3, 'a'));
    assertOk(await purge(2, 'b'));
    assert.equal(await available(), 0);
    clock.advance(1000); // 23:59:59
    assertError(await purge(1, 'c'), 'LimitExceeded.DailyQuota');
    assert.equal(await available(), 0);
    clock.advance(1000); // 00:00:00 the next day
    assert.equal(await available(), 5);
    assertOk(await purge(3, 'd'));
    assert.equal(await available(), 2);
    // UTC midnight (08:00 +08:00) is not a boundary.
    clock.set(Date.UTC(2026, 2, 11, 23, 59, 59)); // 07:59:59 +08:00 on the 12th: a new day already
    assert.equal(await available(), 5);
    assertOk(await purge(1, 'e'));
    clock.advance(1000); // 08:00:00 +08:00, UTC midnight
    assert.equal(await available(), 4);
  });
});

test('a tag purged across two zones (ZoneId "*") is two tasks but one quota unit per tag', async (t) => {
  const server = await startControlPlane(t);
  const sdk = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const left = async () =>
    (await sdk.DescribeContentQuota({ ZoneId: ACME.zoneId })).PurgeQuota.find((q: { Type: string }) => q.Type === 'purge_cache_tag').DailyAvailable;
  const before = await left();
  const r = await sdk.CreatePurgeTask({ ZoneId: '*', Type: 'purge_cache_tag', Targets: ['red', 'blue'], CacheTag: { Domains: [ACME.host, ACME.host3] } });
  assert.equal((await server.store.jobTasks(ACME.appId, r.JobId)).length, 4, 'one task per tag per zone');
  assert.equal(before - (await left()), 2);
});
