// Tenants are walls (DESIGN invariant 7): GLOBEX can neither see nor purge ACME's tasks, zones or hosts,
// and gets each protocol's "no such host/zone" code instead of a silent success.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACME, GLOBEX, startControlPlane } from '../helpers/control-plane.ts';
import { cdnClient, sdkError, teoClient } from '../helpers/sdk.ts';
import { around, cdnTime, config, snapshot } from './fixtures.ts';

test('GLOBEX cannot see or purge ACME tasks, zones or hosts', async (t) => {
  const s = await startControlPlane(t, config());
  const acmeTeo = teoClient(s.endpoint, ACME.secretId, ACME.secretKey);
  const acmeCdn = cdnClient(s.endpoint, ACME.secretId, ACME.secretKey);
  const teo = teoClient(s.endpoint, GLOBEX.secretId, GLOBEX.secretKey);
  const cdn = cdnClient(s.endpoint, GLOBEX.secretId, GLOBEX.secretKey, 'HmacSHA1');

  const job = (await acmeTeo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/secret`] })).JobId;
  const task = (await acmeCdn.PurgePathCache({ Paths: [`http://${ACME.host}/private/`], FlushType: 'delete' })).TaskId;
  const push = (await acmeTeo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/warm`] })).JobId;
  const mine = (await teo.CreatePurgeTask({ ZoneId: GLOBEX.zoneId, Type: 'purge_url', Targets: [`http://${GLOBEX.host}/own`] })).JobId;
  const acmeBefore = await snapshot(s, ACME.appId);
  const globexBefore = await snapshot(s, GLOBEX.appId);

  // Reads: ACME's jobs are invisible by id, by target, by domain and by time.
  const now = Date.now();
  for (const Filters of [[{ Name: 'job-id', Values: [job] }], [{ Name: 'target', Values: ['secret'], Fuzzy: true }], [{ Name: 'domains', Values: [ACME.host] }]]) {
    assert.equal((await teo.DescribePurgeTasks({ ...around(now), Filters })).TotalCount, 0, JSON.stringify(Filters));
  }
  const all = await teo.DescribePurgeTasks(around(now));
  assert.deepEqual(all.Tasks.map((x: { JobId: string }) => x.JobId), [mine]);
  assert.equal((await teo.DescribePrefetchTasks({ Filters: [{ Name: 'job-id', Values: [push] }] })).TotalCount, 0);
  assert.equal((await cdn.DescribePurgeTasks({ TaskId: task })).TotalCount, 0);
  assert.equal((await cdn.DescribePurgeTasks({ StartTime: cdnTime(now - 3_600_000), Keyword: ACME.host })).TotalCount, 0);
  assert.equal((await cdn.DescribePushTasks({ TaskId: push })).TotalCount, 0);
  assert.equal((await sdkError(teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, ...around(now) }))).code, 'InvalidParameter.ZoneNotFound');
  assert.equal((await sdkError(teo.DescribeContentQuota({ ZoneId: ACME.zoneId }))).code, 'InvalidParameter.ZoneNotFound');

  // Writes: ACME's hosts look absent.
  assert.equal((await sdkError(cdn.PurgeUrlsCache({ Urls: [`http://${ACME.host}/x`] }))).code, 'ResourceNotFound.CdnHostNotExists');
  assert.equal((await sdkError(cdn.PurgePathCache({ Paths: [`http://${ACME.host2}/x/`], FlushType: 'flush' }))).code, 'ResourceNotFound.CdnHostNotExists');
  assert.equal((await sdkError(cdn.PushUrlsCache({ Urls: [`http://${ACME.host}/x`] }))).code, 'ResourceNotFound.CdnHostNotExists');
  assert.equal((await sdkError(teo.CreatePurgeTask({ ZoneId: '*', Type: 'purge_url', Targets: [`http://${ACME.host}/x`] }))).code, 'InvalidParameter.DomainNotFound');
  assert.equal((await sdkError(teo.CreatePurgeTask({ ZoneId: GLOBEX.zoneId, Type: 'purge_host', Targets: [ACME.host] }))).code, 'InvalidParameter.DomainNotFound');
  assert.equal((await sdkError(teo.CreatePurgeTask({ ZoneId: '*', Type: 'purge_cache_tag', Targets: ['t'], CacheTag: { Domains: [ACME.host] } }))).code, 'InvalidParameter.DomainNotFound');
  assert.equal((await sdkError(teo.CreatePrefetchTask({ ZoneId: '*', Targets: [`http://${ACME.host}/x`] }))).code, 'InvalidParameter.DomainNotFound');
  for (const Type of ['purge_all', 'purge_url']) {
    const e = await sdkError(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type, Targets: [`http://${ACME.host}/x`] }));
    assert.equal(e.code, 'InvalidParameter.ZoneNotFound', Type);
  }
  // Mixed: GLOBEX's own target goes through, ACME's is refused in FailedList and never stored.
  const mixed = await teo.CreatePurgeTask({ ZoneId: GLOBEX.zoneId, Type: 'purge_url', Targets: [`http://${GLOBEX.host}/b`, `http://${ACME.host}/b`] });
  assert.deepEqual(mixed.FailedList, [{ Reason: 'domain not valid', Targets: [`http://${ACME.host}/b`] }]);
  assert.deepEqual((await s.store.jobTasks(GLOBEX.appId, mixed.JobId)).map((x) => x.target), [`http://${GLOBEX.host}/b`]);

  // ACME is untouched; GLOBEX has exactly its own two jobs; the stores are scoped by account.
  assert.deepEqual(await snapshot(s, ACME.appId), acmeBefore);
  assert.notDeepEqual(await snapshot(s, GLOBEX.appId), globexBefore);
  assert.equal(await s.store.getJob(GLOBEX.appId, job), null);
  // Quotas are per account.
  const q = await teo.DescribeContentQuota({ ZoneId: GLOBEX.zoneId });
  assert.equal(q.PurgeQuota.find((x: { Type: string }) => x.Type === 'purge_url').DailyAvailable, 9998);
});
