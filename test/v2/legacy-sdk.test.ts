// Legacy CDN API v2 through the real qcloudapi-sdk@0.2.1 (TENCENT-API §1.9): every action, GET and POST,
// HmacSHA1 and HmacSHA256, with only the host changed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ACME, GLOBEX, startControlPlane } from '../helpers/control-plane.ts';
import { assertRefused, capi, snapshot, type CapiOptions } from './helpers.ts';

const VARIANTS: CapiOptions[] = [
  { method: 'POST', signatureMethod: 'sha1' },
  { method: 'GET', signatureMethod: 'sha1' },
  { method: 'POST', signatureMethod: 'sha256' },
  { method: 'GET', signatureMethod: 'sha256' },
];
const label = (o: CapiOptions) => `${o.method} ${o.signatureMethod}`;
const DATETIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

/** A wide range around now, as `YYYY-MM-DD HH:mm:ss`. */
const WIDE = { startDate: '2000-01-01 00:00:00', endDate: '2099-12-31 23:59:59' };

describe('qcloudapi-sdk against the legacy endpoint', () => {
  for (const o of VARIANTS) {
    test(`RefreshCdnUrl then GetCdnRefreshLog by taskId (${label(o)})`, async (t) => {
      const server = await startControlPlane(t);
      const urls = [`https://${ACME.host}/a b.jpg`, `https://${ACME.host}/中文.jpg`];
      const body = await capi(server, ACME, { Action: 'RefreshCdnUrl', urls }, o);
      assert.equal(body.code, 0, JSON.stringify(body));
      assert.equal(body.codeDesc, 'Success');
      assert.equal(body.data?.count, 2);
      assert.equal(typeof body.data?.task_id, 'string');

      const log = await capi(server, ACME, { Action: 'GetCdnRefreshLog', taskId: body.data!.task_id }, o);
      assert.equal(log.code, 0, JSON.stringify(log));
      assert.equal(log.data?.total, 1);
      const [record] = log.data!.logs as Array<Record<string, unknown>>;
      assert.deepEqual(record, {
        id: Number(body.data!.task_id),
        app_id: ACME.appId,
        project_id: 0,
        host: ACME.host,
        type: 0,
        status: 1,
        url_list: urls,
        datetime: record!.datetime,
      });
      assert.match(String(record!.datetime), DATETIME);
    });

    test(`RefreshCdnDir with type 1 and 2, listed by date (${label(o)})`, async (t) => {
      const server = await startControlPlane(t);
      const flush = await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: [`https://${ACME.host}/abc/`, `http://${ACME.host2}/x/`] }, o);
      assert.equal(flush.code, 0, JSON.stringify(flush));
      assert.equal(flush.data?.count, 2);
      const del = await capi(server, ACME, { Action: 'RefreshCdnDir', dirs: [`https://${ACME.host}/def/`], type: 2 }, o);
      assert.equal(del.code, 0, JSON.stringify(del));
      assert.equal((await server.store.getJob(ACME.appId, flush.data!.task_id))?.method, 'invalidate');
      assert.equal((await server.store.getJob(ACME.appId, del.data!.task_id))?.method, 'delete');

      const log = await capi(server, ACME, { Action: 'GetCdnRefreshLog', ...WIDE }, o);
      assert.equal(log.code, 0, JSON.stringify(log));
      assert.equal(log.data?.total, 3, 'one record per job and host');
      const logs = log.data!.logs as Array<{ type: number; host: string; url_list: string[] }>;
      assert.ok(logs.every((l) => l.type === 1));
      assert.deepEqual(
        logs.map((l) => [l.host, l.url_list]).sort(),
        [
          [ACME.host, [`https://${ACME.host}/abc/`]],
          [ACME.host, [`https://${ACME.host}/def/`]],
          [ACME.host2, [`http://${ACME.host2}/x/`]],
        ].sort(),
      );
    });

    test(`CdnUrlPusher then GetPushLogs (${label(o)})`, async (t) => {
      const server = await startControlPlane(t);
      const urls = [`https://${ACME.host}/p1.jpg`, `https://${ACME.host2}/p2.jpg`];
      const push = await capi(server, ACME, { Action: 'CdnUrlPusher', urls, limitRate: 5 }, o);
      assert.equal(push.code, 0, JSON.stringify(push));
      assert.equal(push.data?.count, 2);
      const taskId = push.data!.task_id as string;

      const byTask = await capi(server, ACME, { Action: 'GetPushLogs', taskId }, o);
      assert.equal(byTask.code, 0, JSON.stringify(byTask));
      assert.equal(byTask.data?.total, 2);
      for (const l of byTask.data!.logs as Array<Record<string, unknown>>) {
        assert.equal(l.task_id, taskId);
        assert.equal(l.status, 'done');
        assert.equal(l.progress, 100);
        assert.equal(typeof l.log_id, 'number');
        assert.match(String(l.datetime), DATETIME);
        assert.ok(urls.includes(String(l.url)));
        assert.equal(l.host, new URL(String(l.url)).hostname);
      }
      // log_id is no row id (which would tell a tenant how much the others purge): distinct, stable
      // across calls, and not a small counter (a hash below 2^20 has odds of 2^-33).
      const ids = (byTask.data!.logs as Array<{ log_id: number }>).map((l) => l.log_id);
      assert.equal(new Set(ids).size, 2);
      assert.ok(ids.every((id) => Number.isSafeInteger(id) && id >= 2 ** 20), String(ids));
      const again = await capi(server, ACME, { Action: 'GetPushLogs', taskId }, o);
      assert.deepEqual((again.data!.logs as Array<{ log_id: number }>).map((l) => l.log_id), ids);
      const filtered = await capi(server, ACME, { Action: 'GetPushLogs', ...WIDE, hosts: [ACME.host2], status: ['done'], keyword: 'p2' }, o);
      assert.equal(filtered.code, 0, JSON.stringify(filtered));
      assert.deepEqual((filtered.data!.logs as Array<{ url: string }>).map((l) => l.url), [urls[1]]);
    });

    test(`an unknown host is 4000 / 9110 "no such host" and writes nothing (${label(o)})`, async (t) => {
      const server = await startControlPlane(t);
      const before = await snapshot(server, ACME.appId);
      const cases: Array<Record<string, unknown>> = [
        { Action: 'RefreshCdnUrl', urls: [`https://${ACME.host}/ok.jpg`, `https://${GLOBEX.host}/theirs.jpg`] },
        { Action: 'RefreshCdnDir', dirs: [`https://${GLOBEX.host}/dir/`] },
        { Action: 'CdnUrlPusher', urls: ['https://unknown.example.net/x.jpg'] },
      ];
      for (const data of cases) assertRefused(await capi(server, ACME, data, o), 4000, 9110, /no such host/);
      assert.deepEqual(await snapshot(server, ACME.appId), before);
    });
  }

  test('a wrong SecretKey is 4100 and writes nothing', async (t) => {
    const server = await startControlPlane(t);
    const before = await snapshot(server, ACME.appId);
    const body = await capi(server, { secretId: ACME.secretId, secretKey: GLOBEX.secretKey }, { Action: 'RefreshCdnUrl', urls: [`https://${ACME.host}/a.jpg`] });
    assertRefused(body, 4100);
    assert.deepEqual(await snapshot(server, ACME.appId), before);
  });

  test('each tenant sees only its own history', async (t) => {
    const server = await startControlPlane(t);
    const acme = await capi(server, ACME, { Action: 'RefreshCdnUrl', urls: [`https://${ACME.host}/a.jpg`] });
    const push = await capi(server, ACME, { Action: 'CdnUrlPusher', urls: [`https://${ACME.host}/p.jpg`] });
    const globex = await capi(server, GLOBEX, { Action: 'RefreshCdnUrl', urls: [`https://${GLOBEX.host}/g.jpg`] });
    assert.equal(globex.code, 0, JSON.stringify(globex));

    const foreign = await capi(server, GLOBEX, { Action: 'GetCdnRefreshLog', taskId: acme.data!.task_id });
    assert.deepEqual(foreign.data, { logs: [], total: 0 });
    const all = await capi(server, GLOBEX, { Action: 'GetCdnRefreshLog', ...WIDE });
    assert.deepEqual((all.data!.logs as Array<{ host: string }>).map((l) => l.host), [GLOBEX.host]);
    assertRefused(await capi(server, GLOBEX, { Action: 'GetPushLogs', taskId: push.data!.task_id }), 5000, 21001);
    assert.equal((await capi(server, GLOBEX, { Action: 'GetPushLogs' })).data?.total, 0);
  });

  test('an unknown action is 6100', async (t) => {
    const server = await startControlPlane(t);
    assertRefused(await capi(server, ACME, { Action: 'PushCdnUrl', urls: [`https://${ACME.host}/a.jpg`] }), 6100);
  });
});
