// CDN (2018-06-06) actions end to end with tencentcloud-sdk-nodejs-cdn over HTTP, signed with the v1
// methods (HmacSHA1, HmacSHA256; POST form and GET query) and TC3 GET (TENCENT-API §3, §2.5).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ACME, GLOBEX, startControlPlane } from '../helpers/control-plane.ts';
import { cdnClient, sdkError, type SignMethod } from '../helpers/sdk.ts';
import { cdnTime, config, JOB_ID, snapshot } from './fixtures.ts';

const CDN_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
const HOUR = 3_600_000;

async function setup(t: Parameters<typeof startControlPlane>[0], sign: SignMethod = 'TC3-HMAC-SHA256', reqMethod: 'POST' | 'GET' = 'POST', timezone?: string) {
  const s = await startControlPlane(t, config(undefined, timezone ? { server: { listen: '127.0.0.1:0', timezone } } : {}));
  return { s, cdn: cdnClient(s.endpoint, ACME.secretId, ACME.secretKey, sign, reqMethod) };
}

describe('CDN purge', () => {
  test('PurgeUrlsCache (HmacSHA1, POST form): one TaskId per batch, listed in CDN shape', async (t) => {
    const { s, cdn } = await setup(t, 'HmacSHA1');
    const out = await cdn.PurgeUrlsCache({ Urls: [`http://${ACME.host}/1.jpg`, `https://${ACME.host2}/2.jpg`] });
    assert.match(out.TaskId, JOB_ID);
    assert.deepEqual(Object.keys(out).sort(), ['RequestId', 'TaskId']);
    const now = Date.now();
    const logs = await cdn.DescribePurgeTasks({ StartTime: cdnTime(now - HOUR), EndTime: cdnTime(now + HOUR) });
    assert.equal(logs.TotalCount, 2);
    for (const row of logs.PurgeLogs) {
      assert.equal(row.TaskId, out.TaskId);
      assert.equal(row.Status, 'done');
      assert.equal(row.PurgeType, 'url');
      assert.equal(row.FlushType, 'delete');
      assert.match(row.CreateTime, CDN_TIME);
    }
    assert.deepEqual(logs.PurgeLogs.map((r: { Url: string }) => r.Url).sort(), [`http://${ACME.host}/1.jpg`, `https://${ACME.host2}/2.jpg`]);
    const [task] = await s.store.jobTasks(ACME.appId, out.TaskId);
    assert.equal(logs.PurgeLogs[0].CreateTime, cdnTime(task!.createdAt));
  });

  test('PurgePathCache (HmacSHA256, GET query): FlushType flush → invalidate, delete → delete; FlushType required', async (t) => {
    const { s, cdn } = await setup(t, 'HmacSHA256', 'GET');
    const flush = await cdn.PurgePathCache({ Paths: [`http://${ACME.host}/a/`], FlushType: 'flush' });
    const del = await cdn.PurgePathCache({ Paths: [`http://${ACME.host}/b/`], FlushType: 'delete', UrlEncode: true });
    assert.equal((await s.store.jobTasks(ACME.appId, flush.TaskId))[0]?.method, 'invalidate');
    assert.equal((await s.store.jobTasks(ACME.appId, del.TaskId))[0]?.method, 'delete');
    const now = Date.now();
    const logs = await cdn.DescribePurgeTasks({ StartTime: cdnTime(now - HOUR), PurgeType: 'path' });
    assert.deepEqual(
      logs.PurgeLogs.map((r: Record<string, string>) => [r.TaskId, r.Url, r.PurgeType, r.FlushType]).sort(),
      [
        [flush.TaskId, `http://${ACME.host}/a/`, 'path', 'flush'],
        [del.TaskId, `http://${ACME.host}/b/`, 'path', 'delete'],
      ].sort(),
    );
    const before = await snapshot(s, ACME.appId);
    assert.equal((await sdkError(cdn.PurgePathCache({ Paths: [`http://${ACME.host}/c/`] }))).code, 'MissingParameter');
    assert.equal((await sdkError(cdn.PurgePathCache({ Paths: [`http://${ACME.host}/c/`], FlushType: 'invalidate' }))).code, 'InvalidParameter.CdnParamError');
    assert.deepEqual(await snapshot(s, ACME.appId), before);
  });

  test('unknown or foreign host → ResourceNotFound.CdnHostNotExists; the whole request is refused', async (t) => {
    const { s, cdn } = await setup(t);
    const before = await snapshot(s, ACME.appId);
    for (const call of [
      () => cdn.PurgeUrlsCache({ Urls: [`http://${ACME.host}/ok`, `http://${GLOBEX.host}/theirs`] }),
      () => cdn.PurgeUrlsCache({ Urls: ['http://unknown.example.net/x'] }),
      () => cdn.PurgePathCache({ Paths: [`http://${GLOBEX.host}/d/`], FlushType: 'delete' }),
      () => cdn.PushUrlsCache({ Urls: [`http://${ACME.host}/ok`, `http://${GLOBEX.host}/theirs`] }),
    ]) {
      const e = await sdkError(call());
      assert.equal(e.code, 'ResourceNotFound.CdnHostNotExists');
    }
    assert.deepEqual(await snapshot(s, ACME.appId), before);
  });

  test('CDN target refusals: wildcard, malformed, too long, empty', async (t) => {
    const { s, cdn } = await setup(t);
    const before = await snapshot(s, ACME.appId);
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => cdn.PurgeUrlsCache({ Urls: ['http://*.acme.com/a'] }), 'InvalidParameter.CdnPurgeWildcardNotAllowed'],
      [() => cdn.PurgePathCache({ Paths: ['https://*.acme.com/'], FlushType: 'flush' }), 'InvalidParameter.CdnPurgeWildcardNotAllowed'],
      [() => cdn.PushUrlsCache({ Urls: ['http://*.acme.com/a'] }), 'InvalidParameter.CdnPushWildcardNotAllowed'],
      [() => cdn.PurgeUrlsCache({ Urls: [`${ACME.host}/no-scheme`] }), 'InvalidParameter.CdnParamError'],
      [() => cdn.PurgeUrlsCache({ Urls: [`http://${ACME.host}/${'a'.repeat(4100)}`] }), 'InvalidParameter.CdnUrlExceedLength'],
      [() => cdn.PurgeUrlsCache({ Urls: [] }), 'InvalidParameter.CdnParamError'],
      [() => cdn.PurgeUrlsCache({ Urls: 'http://www.acme.com/a' }), 'InvalidParameter.CdnParamError'],
      [() => cdn.PurgeUrlsCache({ Urls: [`http://${ACME.host}/a`], Area: 'mars' }), 'InvalidParameter.CdnParamError'],
    ];
    for (const [call, code] of cases) assert.equal((await sdkError(call())).code, code);
    assert.deepEqual(await snapshot(s, ACME.appId), before);
  });
});

describe('CDN history and quota', () => {
  test('DescribePurgeTasks: TaskId or StartTime required; Keyword (domain or URL), Status, PurgeType, paging', async (t) => {
    const { cdn } = await setup(t);
    const a = await cdn.PurgeUrlsCache({ Urls: [`http://${ACME.host}/k/1`, `http://${ACME.host2}/k/2`, `http://${ACME.host}/k/3`] });
    const b = await cdn.PurgePathCache({ Paths: [`http://${ACME.host2}/dir/`], FlushType: 'flush' });
    const now = Date.now();
    const StartTime = cdnTime(now - HOUR);
    const urls = async (input: Record<string, unknown>) => ((await cdn.DescribePurgeTasks(input)).PurgeLogs as Array<{ Url: string }>).map((r) => r.Url).sort();
    assert.deepEqual(await urls({ TaskId: b.TaskId }), [`http://${ACME.host2}/dir/`]);
    assert.equal((await urls({ StartTime })).length, 4);
    assert.deepEqual(await urls({ StartTime, Keyword: ACME.host2 }), [`http://${ACME.host2}/dir/`, `http://${ACME.host2}/k/2`]);
    assert.deepEqual(await urls({ StartTime, Keyword: `http://${ACME.host}/k/3` }), [`http://${ACME.host}/k/3`]);
    assert.deepEqual(await urls({ StartTime, PurgeType: 'url', Keyword: ACME.host }), [`http://${ACME.host}/k/1`, `http://${ACME.host}/k/3`]);
    assert.equal((await urls({ StartTime, Status: 'done' })).length, 4);
    assert.equal((await urls({ StartTime, Status: 'process' })).length, 0);
    assert.equal((await urls({ StartTime, Status: 'fail' })).length, 0);
    assert.equal((await urls({ TaskId: a.TaskId, StartTime: cdnTime(now + HOUR), EndTime: cdnTime(now + 2 * HOUR) })).length, 0);
    const page = await cdn.DescribePurgeTasks({ StartTime, Offset: 1, Limit: 2 });
    assert.equal(page.TotalCount, 4);
    assert.equal(page.PurgeLogs.length, 2);

    assert.equal((await sdkError(cdn.DescribePurgeTasks({}))).code, 'MissingParameter');
    assert.equal((await sdkError(cdn.DescribePurgeTasks({ EndTime: cdnTime(now) }))).code, 'MissingParameter');
    for (const StartTime of ['2024-02-30 00:00:00', '2024-01-01T00:00:00Z', 'yesterday', '2024-01-01 24:00:00']) {
      assert.equal((await sdkError(cdn.DescribePurgeTasks({ StartTime }))).code, 'InvalidParameter.CdnStatInvalidDate', StartTime);
    }
    assert.equal((await sdkError(cdn.DescribePurgeTasks({ StartTime: cdnTime(now), EndTime: cdnTime(now - HOUR) }))).code, 'InvalidParameter.CdnStatInvalidDate');
    assert.equal((await sdkError(cdn.DescribePurgeTasks({ StartTime, Status: 'invalid' }))).code, 'InvalidParameter.CdnParamError');
    assert.equal((await sdkError(cdn.DescribePurgeTasks({ StartTime, PurgeType: 'host' }))).code, 'InvalidParameter.CdnParamError');
    assert.equal((await sdkError(cdn.DescribePurgeTasks({ StartTime, Limit: 1001 }))).code, 'InvalidParameter.CdnParamError');
  });

  test('DescribePurgeQuota reports live counters with the documented defaults', async (t) => {
    const { cdn } = await setup(t, 'HmacSHA256');
    const q0 = await cdn.DescribePurgeQuota({});
    assert.deepEqual(q0.UrlPurge, [{ Area: 'mainland', Batch: 1000, Total: 10000, Available: 10000 }]);
    assert.deepEqual(q0.PathPurge, [{ Area: 'mainland', Batch: 20, Total: 100, Available: 100 }]);
    await cdn.PurgeUrlsCache({ Urls: [`http://${ACME.host}/1`, `http://${ACME.host}/2`, `http://${ACME.host}/3`] });
    await cdn.PurgePathCache({ Paths: [`http://${ACME.host}/d/`], FlushType: 'delete' });
    const q1 = await cdn.DescribePurgeQuota({});
    assert.equal(q1.UrlPurge[0].Available, 9997);
    assert.equal(q1.PathPurge[0].Available, 99);
    assert.equal((await sdkError(cdn.DescribePurgeQuota({ Area: 'mainland' }))).code, 'UnknownParameter');
  });

  test('PushUrlsCache / DescribePushTasks / DescribePushQuota (TC3 GET)', async (t) => {
    const { s, cdn } = await setup(t, 'TC3-HMAC-SHA256', 'GET');
    const out = await cdn.PushUrlsCache({ Urls: [`http://${ACME.host}/warm.js`], UserAgent: 'Warmer/1', Headers: [{ Name: 'X-A', Value: 'b' }] });
    assert.match(out.TaskId, JOB_ID);
    const now = Date.now();
    const logs = await cdn.DescribePushTasks({ StartTime: cdnTime(now - HOUR), EndTime: cdnTime(now + HOUR) });
    assert.equal(logs.TotalCount, 1);
    const row = logs.PushLogs[0];
    assert.equal(row.TaskId, out.TaskId);
    assert.equal(row.Url, `http://${ACME.host}/warm.js`);
    assert.equal(row.Status, 'done');
    assert.equal(row.Percent, 100);
    assert.match(row.CreateTime, CDN_TIME);
    assert.match(row.UpdateTime, CDN_TIME);
    assert.equal((await cdn.DescribePushTasks({ TaskId: out.TaskId })).TotalCount, 1);
    assert.equal((await cdn.DescribePushTasks({ TaskId: out.TaskId, Status: 'invalid' })).TotalCount, 0);
    const q = await cdn.DescribePushQuota({});
    assert.deepEqual(q.UrlPush, [{ Area: 'mainland', Batch: 500, Total: 1000, Available: 999 }]);
    // Push tasks are not purge history.
    assert.equal((await cdn.DescribePurgeTasks({ TaskId: out.TaskId })).TotalCount, 0);
    const [log] = await s.store.readLog(0, 10);
    assert.equal(log, undefined, 'no edge node: nothing is fanned out');
  });

  test('CDN datetimes use the configured zone (server.timezone), both ways', async (t) => {
    const { s, cdn } = await setup(t, 'TC3-HMAC-SHA256', 'POST', '-05:00');
    const out = await cdn.PurgeUrlsCache({ Urls: [`http://${ACME.host}/tz`] });
    const [task] = await s.store.jobTasks(ACME.appId, out.TaskId);
    const created = task!.createdAt;
    const offset = -300;
    const logs = await cdn.DescribePurgeTasks({ StartTime: cdnTime(created - 60_000, offset), EndTime: cdnTime(created + 60_000, offset) });
    assert.equal(logs.TotalCount, 1);
    assert.equal(logs.PurgeLogs[0].CreateTime, cdnTime(created, offset));
    // Read in +08:00 the same wall-clock window is 13 hours away: nothing.
    const beijing = await cdn.DescribePurgeTasks({ StartTime: cdnTime(created - 60_000), EndTime: cdnTime(created + 60_000) });
    assert.equal(beijing.TotalCount, 0);
  });
});
