// EdgeOne (2022-09-01) actions end to end: the real server on port 0, tencentcloud-sdk-nodejs-teo over
// HTTP (TC3-HMAC-SHA256 POST JSON, TC3 GET), TENCENT-API §4.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ACME, GLOBEX, startControlPlane } from '../helpers/control-plane.ts';
import { sdkError, teoClient } from '../helpers/sdk.ts';
import { around, config, JOB_ID, snapshot } from './fixtures.ts';

const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

async function setup(t: Parameters<typeof startControlPlane>[0]) {
  const s = await startControlPlane(t, config());
  return { s, teo: teoClient(s.endpoint, ACME.secretId, ACME.secretKey) };
}

describe('EdgeOne CreatePurgeTask', () => {
  test('each purge type is accepted and listed in its own shape', async (t) => {
    const { s, teo } = await setup(t);
    const cases = [
      { Type: 'purge_url', Targets: [`http://${ACME.host}/a.txt`], target: `http://${ACME.host}/a.txt`, method: 'delete' },
      { Type: 'purge_prefix', Targets: [`https://${ACME.host}/dir/`], target: `https://${ACME.host}/dir/`, method: 'invalidate' },
      { Type: 'purge_host', Targets: [ACME.host2], target: ACME.host2, method: 'invalidate' },
      { Type: 'purge_all', target: 'acme.com', method: 'invalidate' },
      { Type: 'purge_cache_tag', Targets: ['tag-1'], CacheTag: { Domains: [ACME.host] }, target: 'tag-1', method: 'delete' },
    ];
    for (const c of cases) {
      const { target, method, ...input } = c;
      const out = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, ...input });
      assert.match(out.JobId, JOB_ID);
      assert.deepEqual(out.FailedList, []);
      assert.match(out.RequestId, /^[0-9a-f-]{36}$/);
      const listed = await teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [out.JobId] }] });
      assert.equal(listed.TotalCount, 1, c.Type);
      const task = listed.Tasks[0];
      assert.equal(task.JobId, out.JobId);
      assert.equal(task.Type, c.Type);
      assert.equal(task.Target, target);
      assert.equal(task.Method, method);
      assert.equal(task.Status, 'success');
      assert.match(task.CreateTime, ISO_Z);
      assert.match(task.UpdateTime, ISO_Z);
    }
    assert.equal((await s.store.listTasks({ appId: ACME.appId, offset: 0, limit: 100 })).total, cases.length);
  });

  test('Method is honoured (invalidate | delete) and anything else is refused', async (t) => {
    const { s, teo } = await setup(t);
    for (const Method of ['invalidate', 'delete']) {
      const out = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Method, Targets: [`http://${ACME.host}/${Method}/`] });
      const [task] = await s.store.jobTasks(ACME.appId, out.JobId);
      assert.equal(task?.method, Method);
    }
    const before = await snapshot(s, ACME.appId);
    const e = await sdkError(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Method: 'flush', Targets: [`http://${ACME.host}/x/`] }));
    assert.equal(e.code, 'InvalidParameter.ParameterError');
    assert.deepEqual(await snapshot(s, ACME.appId), before);
  });

  test('ZoneId "*" spreads targets over every zone of the account; not allowed with purge_all', async (t) => {
    const { s, teo } = await setup(t);
    const out = await teo.CreatePurgeTask({ ZoneId: '*', Type: 'purge_url', Targets: [`http://${ACME.host}/1`, `http://${ACME.host3}/2`] });
    assert.deepEqual(out.FailedList, []);
    const tasks = await s.store.jobTasks(ACME.appId, out.JobId);
    assert.deepEqual(tasks.map((x) => x.target).sort(), [`http://${ACME.host3}/2`, `http://${ACME.host}/1`].sort());
    const before = await snapshot(s, ACME.appId);
    const e = await sdkError(teo.CreatePurgeTask({ ZoneId: '*', Type: 'purge_all' }));
    assert.equal(e.code, 'InvalidParameter.ParameterError');
    assert.match(e.message, /purge_all/);
    assert.deepEqual(await snapshot(s, ACME.appId), before);
  });

  test('targets outside the zone go to FailedList and are never stored; none left → DomainNotFound', async (t) => {
    const { s, teo } = await setup(t);
    const out = await teo.CreatePurgeTask({
      ZoneId: ACME.zoneId,
      Type: 'purge_url',
      Targets: [`http://${ACME.host}/ok`, `http://${ACME.host3}/other-zone`, `http://${GLOBEX.host}/foreign`, 'http://nowhere.example/x'],
    });
    assert.deepEqual(out.FailedList, [
      { Reason: 'domain not valid', Targets: [`http://${ACME.host3}/other-zone`, `http://${GLOBEX.host}/foreign`, 'http://nowhere.example/x'] },
    ]);
    const tasks = await s.store.jobTasks(ACME.appId, out.JobId);
    assert.deepEqual(tasks.map((x) => x.target), [`http://${ACME.host}/ok`]);
    assert.equal((await s.controlPlane.purge.usage(s.controlPlane.directory.config.accounts[0]!)).get('purge_url'), 1);

    const before = await snapshot(s, ACME.appId);
    for (const input of [
      { Type: 'purge_url', Targets: [`http://${GLOBEX.host}/x`] },
      { Type: 'purge_host', Targets: [GLOBEX.host, ACME.host3] },
      { Type: 'purge_prefix', Targets: [`http://${ACME.host3}/d/`] },
    ]) {
      const e = await sdkError(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, ...input }));
      assert.equal(e.code, 'InvalidParameter.DomainNotFound', input.Type);
    }
    assert.deepEqual(await snapshot(s, ACME.appId), before);
  });

  test('wildcard hosts, malformed URLs and bad tags are refused with InvalidParameter.Target; nothing is written', async (t) => {
    const { s, teo } = await setup(t);
    const before = await snapshot(s, ACME.appId);
    const bad = [
      { Type: 'purge_host', Targets: ['*.acme.com'] },
      { Type: 'purge_host', Targets: [`http://${ACME.host}/`] },
      { Type: 'purge_host', Targets: [`${ACME.host}:8080`] },
      { Type: 'purge_url', Targets: [`http://*.acme.com/a`] },
      { Type: 'purge_url', Targets: [`${ACME.host}/no-scheme`] },
      { Type: 'purge_url', Targets: [`ftp://${ACME.host}/a`] },
      { Type: 'purge_url', Targets: ['http://exa mple.com/a'] },
      { Type: 'purge_url', Targets: [`http://user:pw@${ACME.host}/a`] },
      { Type: 'purge_url', Targets: [`http://${ACME.host}/ok`, `http://${ACME.host}/${'x'.repeat(5000)}`] },
      { Type: 'purge_url', Targets: [`http://${ACME.host}/ok`, 42] },
      { Type: 'purge_prefix', Targets: ['   '] },
      { Type: 'purge_cache_tag', Targets: ['two words'], CacheTag: { Domains: [ACME.host] } },
      { Type: 'purge_cache_tag', Targets: ['a,b'], CacheTag: { Domains: [ACME.host] } },
      { Type: 'purge_cache_tag', Targets: ['t'], CacheTag: { Domains: ['*.acme.com'] } },
    ];
    for (const input of bad) {
      const e = await sdkError(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, ...input }));
      assert.equal(e.code, 'InvalidParameter.Target', JSON.stringify(input));
    }
    assert.deepEqual(await snapshot(s, ACME.appId), before);
  });

  test('purge_cache_tag: CacheTag.Domains scope the tags; a foreign domain is listed in FailedList, not stored', async (t) => {
    const { s, teo } = await setup(t);
    const out = await teo.CreatePurgeTask({
      ZoneId: ACME.zoneId,
      Type: 'purge_cache_tag',
      Targets: ['product-1', 'product-2'],
      CacheTag: { Domains: [ACME.host, ACME.host2, GLOBEX.host] },
    });
    // Regression: the foreign domain, not the (submitted) tags, is what was refused.
    assert.deepEqual(out.FailedList, [{ Reason: 'domain not valid', Targets: [GLOBEX.host] }]);
    const tasks = await s.store.jobTasks(ACME.appId, out.JobId);
    assert.deepEqual(tasks.map((x) => [x.target, [...x.hosts].sort()]), [
      ['product-1', [ACME.host2, ACME.host].sort()],
      ['product-2', [ACME.host2, ACME.host].sort()],
    ]);
    // Without CacheTag the zone's domains are meant (the docs' example omits it).
    const zoneWide = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_cache_tag', Targets: ['t'] });
    const [zt] = await s.store.jobTasks(ACME.appId, zoneWide.JobId);
    assert.deepEqual([...(zt?.hosts ?? [])].sort(), [ACME.host, ACME.host2].sort());
    // ZoneId "*" needs the domains spelled out.
    const e = await sdkError(teo.CreatePurgeTask({ ZoneId: '*', Type: 'purge_cache_tag', Targets: ['t'] }));
    assert.equal(e.code, 'MissingParameter');
    // Only foreign domains: nothing to purge.
    const f = await sdkError(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_cache_tag', Targets: ['t'], CacheTag: { Domains: [GLOBEX.host] } }));
    assert.equal(f.code, 'InvalidParameter.DomainNotFound');
  });

  test('EncodeUrl stores the RFC 3986 form of a non-ASCII URL; without it the URL is shown as sent', async (t) => {
    const { s, teo } = await setup(t);
    const raw = `http://${ACME.host}/图片/a b.jpg`;
    const enc = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [raw], EncodeUrl: true });
    const plain = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [raw] });
    assert.equal((await s.store.jobTasks(ACME.appId, enc.JobId))[0]?.target, `http://${ACME.host}/%E5%9B%BE%E7%89%87/a%20b.jpg`);
    assert.equal((await s.store.jobTasks(ACME.appId, plain.JobId))[0]?.target, raw);
  });

  test('repeated targets in one request are one task and one quota unit', async (t) => {
    const { s, teo } = await setup(t);
    const u = `http://${ACME.host}/same`;
    const out = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [u, u, `${u}#frag`] });
    assert.equal((await s.store.jobTasks(ACME.appId, out.JobId)).length, 1);
    const q = await teo.DescribeContentQuota({ ZoneId: ACME.zoneId });
    assert.equal(q.PurgeQuota.find((x: { Type: string }) => x.Type === 'purge_url').DailyAvailable, 9999);
  });

  test('a foreign or unknown ZoneId is refused', async (t) => {
    const { s, teo } = await setup(t);
    const before = await snapshot(s, ACME.appId);
    for (const ZoneId of [GLOBEX.zoneId, 'zone-nope', '']) {
      const e = await sdkError(teo.CreatePurgeTask({ ZoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/a`] }));
      assert.equal(e.code, 'InvalidParameter.ZoneNotFound', ZoneId);
    }
    assert.deepEqual(await snapshot(s, ACME.appId), before);
  });
});

describe('EdgeOne prefetch and quota', () => {
  test('CreatePrefetchTask / DescribePrefetchTasks, with Headers and Mode', async (t) => {
    const { s, teo } = await setup(t);
    const out = await teo.CreatePrefetchTask({
      ZoneId: ACME.zoneId,
      Targets: [`http://${ACME.host}/big.bin`, `http://${GLOBEX.host}/x`],
      Mode: 'default',
      Headers: [{ Name: 'X-Warm', Value: '1' }],
    });
    assert.match(out.JobId, JOB_ID);
    assert.deepEqual(out.FailedList, [{ Reason: 'domain not valid', Targets: [`http://${GLOBEX.host}/x`] }]);
    const now = Date.now();
    const listed = await teo.DescribePrefetchTasks({ ZoneId: ACME.zoneId, ...around(now) });
    assert.equal(listed.TotalCount, 1);
    assert.equal(listed.Tasks[0].Type, 'prefetch_url');
    assert.equal(listed.Tasks[0].Target, `http://${ACME.host}/big.bin`);
    assert.equal(listed.Tasks[0].Status, 'success');
    // Prefetch is not purge history, and vice versa.
    assert.equal((await teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, ...around(now) })).TotalCount, 0);
    // Prefetch has no type filter and no fuzzy target (§4.4).
    for (const Filters of [[{ Name: 'type', Values: ['purge_url'] }], [{ Name: 'target', Values: ['big'], Fuzzy: true }]]) {
      assert.equal((await sdkError(teo.DescribePrefetchTasks({ ...around(now), Filters }))).code, 'InvalidParameter.ParameterError');
    }
    const before = await snapshot(s, ACME.appId);
    const e = await sdkError(teo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/a`], Headers: [{ Name: 'Bad Name', Value: 'x' }] }));
    assert.equal(e.code, 'InvalidParameterValue');
    assert.equal((await sdkError(teo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/a`], Mode: 'turbo' }))).code, 'InvalidParameter.ParameterError');
    assert.deepEqual(await snapshot(s, ACME.appId), before);
  });

  test('DescribeContentQuota: documented defaults, live counters per type, "*" allowed, foreign zone refused', async (t) => {
    const { teo } = await setup(t);
    const q0 = await teo.DescribeContentQuota({ ZoneId: ACME.zoneId });
    assert.deepEqual(q0.PurgeQuota, [
      { Type: 'purge_url', Batch: 1000, Daily: 10000, DailyAvailable: 10000 },
      { Type: 'purge_prefix', Batch: 20, Daily: 100, DailyAvailable: 100 },
      { Type: 'purge_host', Batch: 2000, Daily: 10000, DailyAvailable: 10000 },
      { Type: 'purge_all', Batch: 2000, Daily: 10000, DailyAvailable: 10000 },
      { Type: 'purge_cache_tag', Batch: 2000, Daily: 10000, DailyAvailable: 10000 },
    ]);
    assert.deepEqual(q0.PrefetchQuota, [{ Type: 'prefetch_url', Batch: 500, Daily: 1000, DailyAvailable: 1000 }]);
    await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/1`, `http://${ACME.host}/2`] });
    await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_all' });
    await teo.CreatePurgeTask({ ZoneId: ACME.zoneId2, Type: 'purge_all' });
    await teo.CreatePrefetchTask({ ZoneId: '*', Targets: [`http://${ACME.host3}/p`] });
    const q1 = await teo.DescribeContentQuota({ ZoneId: '*' });
    const avail = Object.fromEntries([...q1.PurgeQuota, ...q1.PrefetchQuota].map((x: { Type: string; DailyAvailable: number }) => [x.Type, x.DailyAvailable]));
    assert.deepEqual(avail, { purge_url: 9998, purge_prefix: 100, purge_host: 10000, purge_all: 9998, purge_cache_tag: 10000, prefetch_url: 999 });
    assert.equal((await sdkError(teo.DescribeContentQuota({ ZoneId: GLOBEX.zoneId }))).code, 'InvalidParameter.ZoneNotFound');
    assert.equal((await sdkError(teo.DescribeContentQuota({}))).code, 'MissingParameter');
  });
});

describe('EdgeOne DescribePurgeTasks', () => {
  test('filters: job-id, target (exact and Fuzzy), domains, statuses, type; ZoneId scopes to its domains', async (t) => {
    const { teo } = await setup(t);
    const a = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/img/Logo.PNG`, `http://${ACME.host2}/css/site.css`] });
    const b = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId2, Type: 'purge_prefix', Targets: [`http://${ACME.host3}/img/`] });
    const c = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_host', Targets: [ACME.host] });
    const range = around(Date.now());
    const ids = async (input: Record<string, unknown>) =>
      ((await teo.DescribePurgeTasks({ ...range, ...input })).Tasks as Array<{ JobId: string; Target: string }>).map((x) => `${x.JobId} ${x.Target}`).sort();

    assert.equal((await ids({})).length, 4);
    assert.deepEqual(await ids({ Filters: [{ Name: 'job-id', Values: [b.JobId] }] }), [`${b.JobId} http://${ACME.host3}/img/`]);
    assert.deepEqual(await ids({ Filters: [{ Name: 'target', Values: [`http://${ACME.host2}/css/site.css`] }] }), [`${a.JobId} http://${ACME.host2}/css/site.css`]);
    // Fuzzy is a substring match (ASCII case-insensitive); without Fuzzy "/img/" matches nothing.
    assert.deepEqual(await ids({ Filters: [{ Name: 'target', Values: ['/img/'], Fuzzy: true }] }), [`${a.JobId} http://${ACME.host}/img/Logo.PNG`, `${b.JobId} http://${ACME.host3}/img/`].sort());
    assert.deepEqual(await ids({ Filters: [{ Name: 'target', Values: ['logo.png'], Fuzzy: true }] }), [`${a.JobId} http://${ACME.host}/img/Logo.PNG`]);
    assert.deepEqual(await ids({ Filters: [{ Name: 'target', Values: ['/img/'] }] }), []);
    assert.deepEqual(await ids({ Filters: [{ Name: 'domains', Values: [ACME.host3, 'WWW.ACME.COM'] }] }), [`${a.JobId} http://${ACME.host}/img/Logo.PNG`, `${b.JobId} http://${ACME.host3}/img/`, `${c.JobId} ${ACME.host}`].sort());
    assert.deepEqual(await ids({ Filters: [{ Name: 'type', Values: ['purge_host'] }] }), [`${c.JobId} ${ACME.host}`]);
    assert.equal((await ids({ Filters: [{ Name: 'statuses', Values: ['success'] }] })).length, 4);
    assert.equal((await ids({ Filters: [{ Name: 'statuses', Values: ['processing', 'failed'] }] })).length, 0);
    assert.equal((await ids({ ZoneId: ACME.zoneId })).length, 3);
    assert.deepEqual(await ids({ ZoneId: ACME.zoneId2 }), [`${b.JobId} http://${ACME.host3}/img/`]);
    assert.deepEqual(await ids({ ZoneId: ACME.zoneId2, Filters: [{ Name: 'domains', Values: [ACME.host] }] }), []);

    for (const Filters of [
      [{ Name: 'statuses', Values: ['done'] }],
      [{ Name: 'type', Values: ['prefetch_url'] }],
      [{ Name: 'type', Values: ['purge_url', 'purge_host'] }],
      [{ Name: 'job-id', Values: [] }],
      [{ Name: 'domains', Values: [ACME.host], Fuzzy: true }],
      [{ Name: 'colour', Values: ['red'] }],
      [{ Name: 'domains', Values: Array.from({ length: 21 }, (_, i) => `h${i}.acme.com`) }],
    ]) {
      assert.equal((await sdkError(teo.DescribePurgeTasks({ ...range, Filters }))).code, 'InvalidParameter.ParameterError', JSON.stringify(Filters));
    }
    assert.equal((await sdkError(teo.DescribePurgeTasks({ ...range, ZoneId: GLOBEX.zoneId }))).code, 'InvalidParameter.ZoneNotFound');
  });

  test('paging: Offset/Limit over newest-first rows; Limit is 1..1000, default 20', async (t) => {
    const { teo } = await setup(t);
    const targets = Array.from({ length: 45 }, (_, i) => `http://${ACME.host}/p/${i}`);
    await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: targets });
    const range = around(Date.now());
    const first = await teo.DescribePurgeTasks(range);
    assert.equal(first.TotalCount, 45);
    assert.equal(first.Tasks.length, 20);
    const seen: string[] = [];
    for (let offset = 0; offset < 45; offset += 10) {
      const page = await teo.DescribePurgeTasks({ ...range, Offset: offset, Limit: 10 });
      assert.equal(page.TotalCount, 45);
      seen.push(...page.Tasks.map((x: { Target: string }) => x.Target));
    }
    assert.deepEqual([...seen].sort(), [...targets].sort());
    assert.equal(new Set(seen).size, 45);
    assert.equal((await teo.DescribePurgeTasks({ ...range, Offset: 100 })).Tasks.length, 0);
    assert.equal((await teo.DescribePurgeTasks({ ...range, Limit: 1000 })).Tasks.length, 45);
    for (const bad of [{ Limit: 1001 }, { Limit: 0 }, { Offset: -1 }, { Limit: 2.5 }, { Limit: 'ten' }]) {
      assert.equal((await sdkError(teo.DescribePurgeTasks({ ...range, ...bad }))).code, 'InvalidParameter.ParameterError', JSON.stringify(bad));
    }
  });

  test('TC3 GET: flattened Filters with Fuzzy=true work like JSON', async (t) => {
    const { s } = await setup(t);
    const post = teoClient(s.endpoint, ACME.secretId, ACME.secretKey);
    const get = teoClient(s.endpoint, ACME.secretId, ACME.secretKey, 'TC3-HMAC-SHA256', 'GET');
    const out = await get.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/get/1`, `http://${ACME.host}/get/2`], EncodeUrl: false });
    const input = { ...around(Date.now()), Limit: 5, Filters: [{ Name: 'target', Values: ['get/'], Fuzzy: true }, { Name: 'job-id', Values: [out.JobId] }] };
    const viaGet = await get.DescribePurgeTasks(input);
    const viaPost = await post.DescribePurgeTasks(input);
    assert.equal(viaGet.TotalCount, 2);
    assert.deepEqual(viaGet.Tasks, viaPost.Tasks);
  });
});
