// Audit (each job records the SecretId and client address that submitted it) and status derivation
// before the fan-out exists: no responsible edge node → success at once; a responsible node → processing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACME, GLOBEX, startControlPlane } from '../helpers/control-plane.ts';
import { cdnClient, teoClient } from '../helpers/sdk.ts';
import { around, cdnTime, config } from './fixtures.ts';

const SECOND_KEY = { secretId: 'AKIDacmeCi000000000000000000000000002', secretKey: 'acmeCiSecretKey00000000000000002' } as const;

test('each job records the SecretId and client address that submitted it, whichever API and signature', async (t) => {
  const s = await startControlPlane(
    t,
    config((a) => (a.appId === ACME.appId ? { credentials: [...(a.credentials ?? []), SECOND_KEY] } : {})),
  );
  const viaTc3 = await teoClient(s.endpoint, ACME.secretId, ACME.secretKey).CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/a`] });
  const viaV1 = await cdnClient(s.endpoint, SECOND_KEY.secretId, SECOND_KEY.secretKey, 'HmacSHA1').PurgeUrlsCache({ Urls: [`http://${ACME.host}/b`] });
  const viaGet = await teoClient(s.endpoint, SECOND_KEY.secretId, SECOND_KEY.secretKey, 'HmacSHA256', 'GET').CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/c`] });
  const other = await teoClient(s.endpoint, GLOBEX.secretId, GLOBEX.secretKey).CreatePurgeTask({ ZoneId: GLOBEX.zoneId, Type: 'purge_host', Targets: [GLOBEX.host] });

  const audit = async (appId: number, jobId: string) => {
    const j = await s.store.getJob(appId, jobId);
    assert.ok(j, jobId);
    return [j.secretId, j.clientIp, j.source, j.appId];
  };
  assert.deepEqual(await audit(ACME.appId, viaTc3.JobId), [ACME.secretId, '127.0.0.1', 'teo', ACME.appId]);
  assert.deepEqual(await audit(ACME.appId, viaV1.TaskId), [SECOND_KEY.secretId, '127.0.0.1', 'cdn', ACME.appId]);
  assert.deepEqual(await audit(ACME.appId, viaGet.JobId), [SECOND_KEY.secretId, '127.0.0.1', 'teo', ACME.appId]);
  assert.deepEqual(await audit(GLOBEX.appId, other.JobId), [GLOBEX.secretId, '127.0.0.1', 'teo', GLOBEX.appId]);
});

test('no edge node responsible for a task: success at once', async (t) => {
  const s = await startControlPlane(t, config());
  const teo = teoClient(s.endpoint, ACME.secretId, ACME.secretKey);
  const out = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: [`http://${ACME.host}/d/`] });
  const [task] = (await teo.DescribePurgeTasks({ Filters: [{ Name: 'job-id', Values: [out.JobId] }] })).Tasks;
  assert.equal(task.Status, 'success');
  assert.equal(task.UpdateTime, task.CreateTime);
  assert.equal(await s.store.lastSeq(), 0, 'nothing to fan out');
});

test('with a configured edge node the tasks it serves are processing; others succeed at once', async (t) => {
  const s = await startControlPlane(t, config(undefined, { nodes: [{ id: 'edge-www', listen: '127.0.0.1:18081', token: 'edge-token-0000000000001', hosts: [ACME.host] }] }));
  const teo = teoClient(s.endpoint, ACME.secretId, ACME.secretKey);
  const cdn = cdnClient(s.endpoint, ACME.secretId, ACME.secretKey);
  const served = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/a`, `http://${ACME.host2}/b`] });
  const all = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_all' });
  const elsewhere = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId2, Type: 'purge_all' });
  const viaCdn = await cdn.PurgeUrlsCache({ Urls: [`http://${ACME.host}/c`] });

  const now = Date.now();
  const status = async (Filters: unknown[]) =>
    ((await teo.DescribePurgeTasks({ ...around(now), Filters })).Tasks as Array<Record<string, string>>).map((x) => `${x.Target} ${x.Status}`).sort();
  assert.deepEqual(await status([{ Name: 'job-id', Values: [served.JobId] }]), [`http://${ACME.host2}/b success`, `http://${ACME.host}/a processing`]);
  assert.deepEqual(await status([{ Name: 'job-id', Values: [all.JobId] }]), ['acme.com processing']);
  assert.deepEqual(await status([{ Name: 'job-id', Values: [elsewhere.JobId] }]), ['acme.org success']);
  assert.deepEqual(await status([{ Name: 'statuses', Values: ['processing'] }]), [`acme.com processing`, `http://${ACME.host}/a processing`, `http://${ACME.host}/c processing`].sort());
  const logs = await cdn.DescribePurgeTasks({ StartTime: cdnTime(now - 60_000), Status: 'process' });
  assert.deepEqual(logs.PurgeLogs.map((x: { TaskId: string; Status: string }) => [x.TaskId, x.Status]), [[viaCdn.TaskId, 'process'], [served.JobId, 'process']]);
  // Exactly the processing tasks were put on the purge log for the node.
  const log = await s.store.readLog(0, 100);
  assert.deepEqual(log.map((e) => e.jobId).sort(), [served.JobId, all.JobId, viaCdn.TaskId].sort());
});
