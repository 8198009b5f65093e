// One history: a task submitted through any action is visible through every query action that covers
// its type, each in its own shape; time filters in both products' formats (TENCENT-API §3.3, §3.5,
// §4.2, §4.4, §7.7).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/shared/clock.ts';
import { ACME, startControlPlane } from '../helpers/control-plane.ts';
import { cdnClient, teoClient } from '../helpers/sdk.ts';
import { around, assertError, assertOk, cdnTime, CDN, config, rawCall, TEO } from './fixtures.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('one history across EdgeOne and CDN', () => {
  test('purges and prefetches from either product show in every query that covers their type', async (t) => {
    const s = await startControlPlane(t, config());
    const teo = teoClient(s.endpoint, ACME.secretId, ACME.secretKey);
    const cdn = cdnClient(s.endpoint, ACME.secretId, ACME.secretKey, 'HmacSHA256');
    const u = (p: string) => `http://${ACME.host}/${p}`;

    const teoUrl = (await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [u('teo-url')] })).JobId;
    const teoPrefix = (await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Method: 'invalidate', Targets: [u('teo-dir/')] })).JobId;
    const teoHost = (await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_host', Targets: [ACME.host] })).JobId;
    const teoPrefetch = (await teo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [u('teo-warm')] })).JobId;
    const cdnUrl = (await cdn.PurgeUrlsCache({ Urls: [u('cdn-url')] })).TaskId;
    const cdnPath = (await cdn.PurgePathCache({ Paths: [u('cdn-dir/')], FlushType: 'delete' })).TaskId;
    const cdnPush = (await cdn.PushUrlsCache({ Urls: [u('cdn-warm')] })).TaskId;

    const now = Date.now();
    const teoPurges = (await teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, ...around(now) })).Tasks as Array<Record<string, string>>;
    assert.deepEqual(
      teoPurges.map((x) => [x.JobId, x.Type, x.Method, x.Target, x.Status]).sort(),
      [
        [teoUrl, 'purge_url', 'delete', u('teo-url'), 'success'],
        [teoPrefix, 'purge_prefix', 'invalidate', u('teo-dir/'), 'success'],
        [teoHost, 'purge_host', 'invalidate', ACME.host, 'success'],
        [cdnUrl, 'purge_url', 'delete', u('cdn-url'), 'success'],
        [cdnPath, 'purge_prefix', 'delete', u('cdn-dir/'), 'success'],
      ].sort(),
    );
    const cdnPurges = (await cdn.DescribePurgeTasks({ StartTime: cdnTime(now - HOUR), EndTime: cdnTime(now + HOUR) })).PurgeLogs as Array<Record<string, string>>;
    assert.deepEqual(
      cdnPurges.map((x) => [x.TaskId, x.PurgeType, x.FlushType, x.Url, x.Status]).sort(),
      [
        [teoUrl, 'url', 'delete', u('teo-url'), 'done'],
        [teoPrefix, 'path', 'flush', u('teo-dir/'), 'done'],
        [cdnUrl, 'url', 'delete', u('cdn-url'), 'done'],
        [cdnPath, 'path', 'delete', u('cdn-dir/'), 'done'],
      ].sort(),
    );
    const teoPrefetches = (await teo.DescribePrefetchTasks(around(now))).Tasks as Array<Record<string, string>>;
    assert.deepEqual(teoPrefetches.map((x) => [x.JobId, x.Type, x.Target]).sort(), [
      [cdnPush, 'prefetch_url', u('cdn-warm')],
      [teoPrefetch, 'prefetch_url', u('teo-warm')],
    ].sort());
    const cdnPushes = (await cdn.DescribePushTasks({ StartTime: cdnTime(now - HOUR) })).PushLogs as Array<Record<string, string>>;
    assert.deepEqual(cdnPushes.map((x) => [x.TaskId, x.Url, x.Status]).sort(), [
      [cdnPush, u('cdn-warm'), 'done'],
      [teoPrefetch, u('teo-warm'), 'done'],
    ].sort());
    // By id, through the other product.
    assert.equal((await cdn.DescribePurgeTasks({ TaskId: teoUrl })).PurgeLogs[0].Url, u('teo-url'));
    assert.equal((await teo.DescribePurgeTasks({ Filters: [{ Name: 'job-id', Values: [cdnPath] }] })).Tasks[0].Type, 'purge_prefix');
    assert.equal((await cdn.DescribePushTasks({ TaskId: teoPrefetch })).TotalCount, 1);
    // Host purges have no CDN 3.0 shape: not in the CDN log.
    assert.equal((await cdn.DescribePurgeTasks({ TaskId: teoHost })).TotalCount, 0);
  });
});

describe('time filters', () => {
  // 2026-03-10 12:00:00.500 UTC: half a second past a whole second, as real task times are.
  const T0 = Date.UTC(2026, 2, 10, 12, 0, 0, 500);

  async function seeded(t: Parameters<typeof startControlPlane>[0]) {
    const clock = new ManualClock(T0);
    const s = await startControlPlane(t, config(), { clock });
    const submit = async (path: string) => {
      const r = assertOk(await rawCall(s, ACME, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/${path}`] } }, clock));
      return String(r.JobId);
    };
    const at0 = await submit('t0');
    clock.advance(HOUR);
    const at1h = await submit('t1h');
    clock.advance(2 * DAY);
    const at2d = await submit('t2d');
    clock.advance(10 * DAY);
    const teo = (body: Record<string, unknown>) => rawCall(s, ACME, { action: 'DescribePurgeTasks', version: TEO, body }, clock);
    const cdn = (body: Record<string, unknown>) => rawCall(s, ACME, { action: 'DescribePurgeTasks', version: CDN, body }, clock);
    return { s, clock, at0, at1h, at2d, teo, cdn };
  }

  const jobs = (r: Record<string, unknown>, key = 'Tasks', id = 'JobId') => ((r[key] as Array<Record<string, string>>) ?? []).map((x) => x[id]);

  test('EdgeOne: ISO 8601 with any offset, output in Z; ranges select by CreateTime', async (t) => {
    const { at0, at1h, at2d, teo } = await seeded(t);
    const r = assertOk(await teo({ StartTime: '2026-03-10T20:00:00+08:00', EndTime: '2026-03-10T20:30:00+08:00' }));
    assert.deepEqual(jobs(r), [at0]);
    assert.equal((r.Tasks as Array<Record<string, string>>)[0]!.CreateTime, '2026-03-10T12:00:00Z');
    assert.deepEqual(jobs(assertOk(await teo({ StartTime: '2026-03-10T00:00:00Z', EndTime: '2026-03-13T00:00:00Z' }))), [at2d, at1h, at0]);
    assert.deepEqual(jobs(assertOk(await teo({ StartTime: '2026-03-10T12:30:00Z', EndTime: '2026-03-11T12:00:00Z' }))), [at1h]);
    assert.deepEqual(jobs(assertOk(await teo({ StartTime: '2026-03-10T07:00:00-05:00', EndTime: '2026-03-10T07:59:59-05:00' }))), [at0]);
    assert.deepEqual(jobs(assertOk(await teo({ StartTime: '2026-03-01T00:00:00Z', EndTime: '2026-03-02T00:00:00Z' }))), []);
  });

  test('EndTime covers its whole second: a task shown as …:00Z is found with EndTime …:00Z', async (t) => {
    const { at0, teo, cdn } = await seeded(t);
    // Regression: createdAt is 12:00:00.500; EndTime 12:00:00 used to stop at .000 and miss it.
    assert.deepEqual(jobs(assertOk(await teo({ StartTime: '2026-03-10T12:00:00Z', EndTime: '2026-03-10T12:00:00Z' }))), [at0]);
    assert.deepEqual(jobs(assertOk(await cdn({ StartTime: '2026-03-10 20:00:00', EndTime: '2026-03-10 20:00:00' })), 'PurgeLogs', 'TaskId'), [at0]);
    // An explicit fraction is taken literally.
    assert.deepEqual(jobs(assertOk(await teo({ StartTime: '2026-03-10T11:00:00Z', EndTime: '2026-03-10T12:00:00.250Z' }))), []);
    assert.deepEqual(jobs(assertOk(await teo({ StartTime: '2026-03-10T11:00:00Z', EndTime: '2026-03-10T12:00:00.500Z' }))), [at0]);
  });

  test('the interval may not exceed 7 days; EndTime before StartTime and half ranges are refused', async (t) => {
    const { at0, at1h, at2d, teo } = await seeded(t);
    assert.deepEqual(jobs(assertOk(await teo({ StartTime: '2026-03-06T00:00:00Z', EndTime: '2026-03-13T00:00:00Z' }))), [at2d, at1h, at0]);
    assertError(await teo({ StartTime: '2026-03-06T00:00:00Z', EndTime: '2026-03-13T00:00:01Z' }), 'InvalidParameter.ParameterError', /cannot exceed 7 days/);
    assertError(await teo({ StartTime: '2026-03-06T00:00:00+08:00', EndTime: '2026-03-13T00:00:00Z' }), 'InvalidParameter.ParameterError', /7 days/);
    assertError(await teo({ StartTime: '2026-03-11T00:00:00Z', EndTime: '2026-03-10T00:00:00Z' }), 'InvalidParameter.ParameterError');
    assertError(await teo({ StartTime: '2026-03-11T00:00:00Z' }), 'InvalidParameter.ParameterError');
    assertError(await teo({}), 'InvalidParameter.ParameterError', /job-id/);
    // A job-id needs no range.
    assert.deepEqual(jobs(assertOk(await teo({ Filters: [{ Name: 'job-id', Values: [at1h] }] }))), [at1h]);
    assertError(await teo({ StartTime: '2026-03-10T00:00:00Z', EndTime: '2026-03-11T00:00:00Z', Limit: 1001 }), 'InvalidParameter.ParameterError');
  });

  test('CDN: YYYY-MM-DD HH:mm:ss in +08:00 by default; EndTime defaults to now', async (t) => {
    const { at0, at1h, at2d, cdn } = await seeded(t);
    const r = assertOk(await cdn({ StartTime: '2026-03-10 20:00:00', EndTime: '2026-03-10 20:59:59' }));
    assert.deepEqual(jobs(r, 'PurgeLogs', 'TaskId'), [at0]);
    assert.equal((r.PurgeLogs as Array<Record<string, string>>)[0]!.CreateTime, '2026-03-10 20:00:00');
    assert.deepEqual(jobs(assertOk(await cdn({ StartTime: '2026-03-10 21:00:00' })), 'PurgeLogs', 'TaskId'), [at2d, at1h]);
    assert.deepEqual(jobs(assertOk(await cdn({ StartTime: '2026-03-10 12:00:00', EndTime: '2026-03-10 19:59:59' })), 'PurgeLogs', 'TaskId'), []);
  });
});
