// One history and one quota across the legacy v2 API, CDN API 3.0 and EdgeOne API 3.0 (legacy-API
// issue): each side reads what the others wrote, and refusals on any side leave both untouched.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ACME, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { cdnClient, teoClient } from '../helpers/sdk.ts';
import { assertRefused, capi, flat, raw, snapshot } from './helpers.ts';

const WIDE = { startDate: '2000-01-01 00:00:00', endDate: '2099-12-31 23:59:59' };

function clients(server: TestServer) {
  return { teo: teoClient(server.endpoint, ACME.secretId, ACME.secretKey), cdn: cdnClient(server.endpoint, ACME.secretId, ACME.secretKey) };
}

/** The purge_prefix counters as EdgeOne and CDN report them. */
async function dirQuota(server: TestServer): Promise<{ teo: number; cdn: number }> {
  const { teo, cdn } = clients(server);
  const content = await teo.DescribeContentQuota!({ ZoneId: '*' });
  const purge = await cdn.DescribePurgeQuota!({});
  const prefix = (content.PurgeQuota as Array<{ Type: string; DailyAvailable: number }>).find((q) => q.Type === 'purge_prefix')!;
  return { teo: prefix.DailyAvailable, cdn: (purge.PathPurge as Array<{ Available: number }>)[0]!.Available };
}

describe('one history and one quota with API 3.0', () => {
  test('a RefreshCdnDir shows in EdgeOne as purge_prefix and in CDN as path, and uses the shared quota', async (t) => {
    const server = await startControlPlane(t);
    const { teo, cdn } = clients(server);
    assert.deepEqual(await dirQuota(server), { teo: 100, cdn: 100 });

    const dir = `https://${ACME.host}/static/`;
    const flush = await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: [dir] });
    const del = await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: [`https://${ACME.host}/img/`], type: 2 });
    assert.equal(flush.code, 0, JSON.stringify(flush));
    assert.equal(del.code, 0, JSON.stringify(del));
    assert.deepEqual(await dirQuota(server), { teo: 98, cdn: 98 });

    const eo = await teo.DescribePurgeTasks!({ ZoneId: '*', Filters: [{ Name: 'job-id', Values: [flush.data!.task_id] }] });
    assert.equal(eo.TotalCount, 1);
    assert.deepEqual(
      (eo.Tasks as Array<Record<string, unknown>>).map((x) => [x.JobId, x.Target, x.Type, x.Method, x.Status]),
      [[flush.data!.task_id, dir, 'purge_prefix', 'invalidate', 'success']],
    );
    const eoDel = await teo.DescribePurgeTasks!({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [del.data!.task_id] }] });
    assert.equal((eoDel.Tasks as Array<{ Method: string }>)[0]?.Method, 'delete');

    const c = await cdn.DescribePurgeTasks!({ TaskId: flush.data!.task_id });
    assert.deepEqual(
      (c.PurgeLogs as Array<Record<string, unknown>>).map((x) => [x.TaskId, x.Url, x.PurgeType, x.FlushType, x.Status]),
      [[flush.data!.task_id, dir, 'path', 'flush', 'done']],
    );
    const cDel = await cdn.DescribePurgeTasks!({ TaskId: del.data!.task_id, PurgeType: 'path' });
    assert.equal((cDel.PurgeLogs as Array<{ FlushType: string }>)[0]?.FlushType, 'delete');
  });

  test('URL and directory purges from EdgeOne and CDN show in GetCdnRefreshLog; host purges do not', async (t) => {
    const server = await startControlPlane(t);
    const { teo, cdn } = clients(server);
    const eoUrl = await teo.CreatePurgeTask!({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`https://${ACME.host}/eo.js`] });
    const eoHost = await teo.CreatePurgeTask!({ ZoneId: ACME.zoneId, Type: 'purge_host', Targets: [ACME.host2] });
    const cdnPath = await cdn.PurgePathCache!({ Paths: [`https://${ACME.host3}/cdn/`], FlushType: 'delete' });
    assert.ok(eoHost.JobId);

    const log = await capi(server, ACME, { Action: 'GetCdnRefreshLog', ...WIDE });
    assert.equal(log.data?.total, 2);
    const byTask = new Map((log.data!.logs as Array<{ url_list: string[]; type: number }>).map((l) => [l.url_list[0], l.type]));
    assert.deepEqual(Object.fromEntries(byTask), { [`https://${ACME.host}/eo.js`]: 0, [`https://${ACME.host3}/cdn/`]: 1 });

    for (const id of [eoUrl.JobId as string, cdnPath.TaskId as string]) {
      const one = await capi(server, ACME, { Action: 'GetCdnRefreshLog', taskId: id });
      assert.equal(one.data?.total, 1, `task ${id} is one job id across the APIs`);
    }
    const hostJob = await capi(server, ACME, { Action: 'GetCdnRefreshLog', taskId: eoHost.JobId });
    assert.deepEqual(hostJob.data, { logs: [], total: 0 });
  });

  test('the 100 directories a day are one budget for all three APIs (22046 once spent)', async (t) => {
    const server = await startControlPlane(t);
    const { teo, cdn } = clients(server);
    const dirs = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `https://${ACME.host}/${prefix}${i}/`);
    for (let round = 0; round < 4; round++) await cdn.PurgePathCache!({ Paths: dirs(`c${round}-`, 20), FlushType: 'flush' });
    await teo.CreatePurgeTask!({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: dirs('eo-', 18) });
    assert.deepEqual(await dirQuota(server), { teo: 2, cdn: 2 });

    const before = await snapshot(server, ACME.appId);
    assertRefused(await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: dirs('v2a-', 3) }), 4000, 22046);
    assert.deepEqual(await snapshot(server, ACME.appId), before, 'an over-quota request charges nothing');

    const ok = await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: dirs('v2b-', 2) });
    assert.equal(ok.code, 0, JSON.stringify(ok));
    assert.deepEqual(await dirQuota(server), { teo: 0, cdn: 0 });
    assertRefused(await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: dirs('v2c-', 1) }), 4000, 22046);
  });

  test('URL refreshes charge the shared purge_url quota', async (t) => {
    const server = await startControlPlane(t);
    const { cdn } = clients(server);
    const urls = Array.from({ length: 7 }, (_, i) => `https://${ACME.host}/u${i}.js`);
    assert.equal((await capi(server, ACME, { Action: 'RefreshCdnUrl', urls })).code, 0);
    const q = await cdn.DescribePurgeQuota!({});
    assert.deepEqual((q.UrlPurge as Array<{ Available: number; Total: number; Batch: number }>)[0], { Area: 'mainland', Batch: 1000, Total: 10000, Available: 9993 });
  });

  test('prefetches from CdnUrlPusher and PushUrlsCache share one history and one quota', async (t) => {
    const server = await startControlPlane(t);
    const { teo, cdn } = clients(server);
    const legacy = await capi(server, ACME, { Action: 'CdnUrlPusher', urls: [`https://${ACME.host}/v2.mp4`] });
    const modern = await cdn.PushUrlsCache!({ Urls: [`https://${ACME.host2}/api3.mp4`] });

    const pushTasks = await cdn.DescribePushTasks!({ TaskId: legacy.data!.task_id });
    assert.deepEqual((pushTasks.PushLogs as Array<{ Url: string }>).map((l) => l.Url), [`https://${ACME.host}/v2.mp4`]);
    const eo = await teo.DescribePrefetchTasks!({ ZoneId: '*', Filters: [{ Name: 'job-id', Values: [legacy.data!.task_id] }] });
    assert.equal(eo.TotalCount, 1);

    const logs = await capi(server, ACME, { Action: 'GetPushLogs', taskId: modern.TaskId });
    assert.deepEqual((logs.data!.logs as Array<{ url: string }>).map((l) => l.url), [`https://${ACME.host2}/api3.mp4`]);
    const quota = await cdn.DescribePushQuota!({});
    assert.equal((quota.UrlPush as Array<{ Available: number }>)[0]?.Available, 998);
  });

  test('refusals on the legacy side leave the quota and every API\'s history untouched', async (t) => {
    const server = await startControlPlane(t);
    const { teo, cdn } = clients(server);
    const seeded = await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: [`https://${ACME.host}/seed/`] });
    assert.equal(seeded.code, 0);
    const before = { store: await snapshot(server, ACME.appId), quota: await dirQuota(server) };

    const dirs = (n: number) => Array.from({ length: n }, (_, i) => `https://${ACME.host}/d${i}/`);
    const signed = { Action: 'RefreshCdnDir', ...flat('dirs', dirs(1)) };
    assertRefused(await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: dirs(21) }), 4000, 22045);
    assertRefused(await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: ['https://www.globex.com/x/'] }), 4000, 9110);
    assertRefused(await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: ['www.acme.com/no-scheme/'] }), 4000, 9003);
    assertRefused(await raw(server, ACME, signed, { signKey: 'not-the-key-0000000000' }), 4100);
    assertRefused(await raw(server, ACME, signed, { timestamp: Math.floor(Date.now() / 1000) - 7201 }), 4200);
    assert.deepEqual({ store: await snapshot(server, ACME.appId), quota: await dirQuota(server) }, before, 'the refusals wrote nothing');

    const nonce = '424242';
    const timestamp = Math.floor(Date.now() / 1000) - 5;
    const first = await raw(server, ACME, signed, { nonce, timestamp });
    assert.equal(first.code, 0, JSON.stringify(first));
    const after = { store: await snapshot(server, ACME.appId), quota: await dirQuota(server) };
    assert.equal(after.store.jobs.length, before.store.jobs.length + 1);
    assert.deepEqual(after.quota, { teo: before.quota.teo - 1, cdn: before.quota.cdn - 1 });
    assertRefused(await raw(server, ACME, signed, { nonce, timestamp }), 4500);
    assert.deepEqual({ store: await snapshot(server, ACME.appId), quota: await dirQuota(server) }, after, 'the replay wrote nothing');

    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const eo = await teo.DescribePurgeTasks!({
      ZoneId: '*',
      StartTime: iso(Date.now() - 3_600_000),
      EndTime: iso(Date.now() + 3_600_000),
      Filters: [{ Name: 'type', Values: ['purge_prefix'] }],
    });
    assert.equal(eo.TotalCount, 2, 'EdgeOne: the seed and the one accepted request');
    const c = await cdn.DescribePurgeTasks!({ PurgeType: 'path', StartTime: '2000-01-01 00:00:00' });
    assert.equal(c.TotalCount, 2, 'CDN: the seed and the one accepted request');
  });
});
