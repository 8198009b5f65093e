// Legacy v2 refusals with our own signer (TENCENT-API §1.3-§1.8, DESIGN invariant 8): replays, stale
// timestamps, forged signatures, malformed dates and parameters, batch, daily and rate limits. Each
// gets its documented code, and none of them touches the quota or the history.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ACME, baseConfig, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { assertRefused, flat, raw, send, signV2, snapshot, type V2Body } from './helpers.ts';

const url = (path: string) => `https://${ACME.host}/${path}`;
const now = () => Math.floor(Date.now() / 1000);

/** Runs `refuse`, then asserts that quota and history are as they were. */
async function untouched(server: TestServer, refuse: () => Promise<void>): Promise<void> {
  const before = await snapshot(server, ACME.appId);
  await refuse();
  assert.deepEqual(await snapshot(server, ACME.appId), before, 'a refusal changed the quota or the history');
}

describe('legacy v2 signature, timestamp and replay refusals', () => {
  test('the same signed request sent twice is refused the second time (4500), over GET and POST', async (t) => {
    const server = await startControlPlane(t);
    for (const method of ['GET', 'POST'] as const) {
      const signed = signV2(server, ACME, { Action: 'RefreshCdnUrl', ...flat('urls', [url(`${method}.js`)]) }, { method });
      const first = await send(server, signed);
      assert.equal(first.code, 0, JSON.stringify(first));
      await untouched(server, async () => assertRefused(await send(server, signed), 4500));
    }
  });

  test('the same Nonce with a new Timestamp is a new request (qcloudapi-sdk draws 16-bit nonces)', async (t) => {
    const server = await startControlPlane(t);
    const fields = { Action: 'RefreshCdnUrl', ...flat('urls', [url('n.js')]) };
    assert.equal((await raw(server, ACME, fields, { nonce: '7', timestamp: now() - 10 })).code, 0);
    assert.equal((await raw(server, ACME, fields, { nonce: '7', timestamp: now() - 9 })).code, 0);
  });

  test('a Timestamp more than 2 hours off is refused (4200); inside the window it is accepted', async (t) => {
    const server = await startControlPlane(t);
    const fields = { Action: 'RefreshCdnUrl', ...flat('urls', [url('t.js')]) };
    await untouched(server, async () => {
      assertRefused(await raw(server, ACME, fields, { timestamp: now() - 7200 - 60 }), 4200);
      assertRefused(await raw(server, ACME, fields, { timestamp: now() + 7200 + 60 }), 4200);
      assertRefused(await raw(server, ACME, fields, { timestamp: 0 }), 4200);
    });
    assert.equal((await raw(server, ACME, fields, { timestamp: now() - 7200 + 60 })).code, 0);
  });

  test('forged, tampered and incomplete requests are refused and write nothing', async (t) => {
    const server = await startControlPlane(t);
    const fields = { Action: 'RefreshCdnUrl', ...flat('urls', [url('f.js')]) };
    await untouched(server, async () => {
      assertRefused(await raw(server, ACME, fields, { signKey: 'someone-elses-secret-key' }), 4100);
      assertRefused(await raw(server, { secretId: 'AKIDunknown00000000000000', secretKey: ACME.secretKey }, fields), 4100);
      assertRefused(await raw(server, ACME, fields, { signatureMethod: 'HmacSHA256', signKey: 'wrong-wrong-wrong' }), 4100);
      const signed = signV2(server, ACME, fields);
      assertRefused(await send(server, { ...signed, params: { ...signed.params, 'urls.0': url('other.js') } }), 4100);
      assertRefused(await raw(server, ACME, fields, { drop: 'Signature' }), 4000, 9003, /Signature/);
      assertRefused(await raw(server, ACME, fields, { drop: 'Nonce' }), 4000, 9003, /Nonce/);
      assertRefused(await raw(server, ACME, { ...fields, SignatureMethod: 'HmacMD5' }), 4000, 9003);
      const put = await fetch(`${server.url}/v2/index.php`, { method: 'PUT', body: 'Action=RefreshCdnUrl' });
      assertRefused((await put.json()) as V2Body, 4600);
    });
  });

  test('HmacSHA256 raw requests are accepted', async (t) => {
    const server = await startControlPlane(t);
    const body = await raw(server, ACME, { Action: 'RefreshCdnUrl', ...flat('urls', [url('s.js')]) }, { signatureMethod: 'HmacSHA256', method: 'GET' });
    assert.equal(body.code, 0, JSON.stringify(body));
  });
});

describe('legacy v2 malformed parameters', () => {
  const cases: Array<[string, Record<string, string>, number, number]> = [
    ['RefreshCdnUrl without urls', { Action: 'RefreshCdnUrl' }, 4000, 9003],
    ['RefreshCdnUrl with a blank urls.0', { Action: 'RefreshCdnUrl', 'urls.0': '' }, 4000, 9003],
    ['RefreshCdnUrl with a sparse list', { Action: 'RefreshCdnUrl', 'urls.1': url('a.js') }, 4000, 9003],
    ['RefreshCdnUrl with named entries', { Action: 'RefreshCdnUrl', 'urls.a': url('a.js') }, 4000, 9003],
    ['RefreshCdnUrl with a URL without scheme', { Action: 'RefreshCdnUrl', ...flat('urls', [url('ok.js'), 'www.acme.com/a.js']) }, 4000, 9003],
    ['RefreshCdnUrl with an ftp URL', { Action: 'RefreshCdnUrl', ...flat('urls', ['ftp://www.acme.com/a.js']) }, 4000, 9003],
    ['RefreshCdnUrl with a wildcard host', { Action: 'RefreshCdnUrl', ...flat('urls', ['https://*.acme.com/a.js']) }, 4000, 9003],
    ['RefreshCdnUrl with a 5000-character URL', { Action: 'RefreshCdnUrl', ...flat('urls', [url('x'.repeat(5000))]) }, 4000, 9003],
    ['RefreshCdnUrl with an unknown parameter', { Action: 'RefreshCdnUrl', ...flat('urls', [url('a.js')]), bogus: '1' }, 4000, 9003],
    ['RefreshCdnDir without the http(s) prefix', { Action: 'RefreshCdnDir', ...flat('dirs', ['www.acme.com/abc/']) }, 4000, 9003],
    ['RefreshCdnDir with type 3', { Action: 'RefreshCdnDir', ...flat('dirs', [url('abc/')]), type: '3' }, 4000, 9003],
    ['RefreshCdnDir with type "all"', { Action: 'RefreshCdnDir', ...flat('dirs', [url('abc/')]), type: 'all' }, 4000, 9003],
    ['CdnUrlPusher with limitRate 0', { Action: 'CdnUrlPusher', ...flat('urls', [url('p.js')]), limitRate: '0' }, 4000, 9003],
    ['GetCdnRefreshLog without dates or taskId', { Action: 'GetCdnRefreshLog', host: ACME.host }, 4000, 9003],
    ['GetCdnRefreshLog with only a blank url', { Action: 'GetCdnRefreshLog', url: '' }, 4000, 9003],
    ['GetCdnRefreshLog with limit 0', { Action: 'GetCdnRefreshLog', taskId: 'x', limit: '0' }, 4000, 9003],
    ['GetPushLogs with an unknown status', { Action: 'GetPushLogs', 'status.0': 'finished' }, 4000, 9003],
    ['GetPushLogs with limit 5000', { Action: 'GetPushLogs', limit: '5000' }, 4000, 9003],
    ['GetPushLogs with a negative offset', { Action: 'GetPushLogs', offset: '-1' }, 4000, 9003],
  ];
  const dates: Array<[string, string]> = [
    ['slashes', '2017/02/09 00:00:00'],
    ['ISO 8601', '2017-02-09T00:00:00+08:00'],
    ['Unix seconds', '1486569600'],
    ['an impossible day', '2017-02-30 00:00:00'],
    ['an impossible hour', '2017-02-09 24:00:00'],
    ['no seconds', '2017-02-09 00:00'],
    ['words', 'yesterday'],
  ];
  for (const [name, value] of dates) {
    cases.push([`GetCdnRefreshLog with a startDate in ${name}`, { Action: 'GetCdnRefreshLog', startDate: value, endDate: '2017-02-10 00:00:00' }, 4000, 9150]);
    cases.push([`GetPushLogs with an endDate in ${name}`, { Action: 'GetPushLogs', startDate: '2017-02-08 00:00:00', endDate: value }, 4000, 9150]);
  }
  cases.push(['GetCdnRefreshLog with endDate before startDate', { Action: 'GetCdnRefreshLog', startDate: '2017-02-09 00:00:01', endDate: '2017-02-09 00:00:00' }, 4000, 9150]);

  test('each is 4000 with its module code, and none writes anything', async (t) => {
    const server = await startControlPlane(t);
    await untouched(server, async () => {
      for (const [name, fields, code, module] of cases) {
        const body = await raw(server, ACME, fields);
        assert.equal(body.code, code, `${name}: ${JSON.stringify(body)}`);
        assert.equal(body.codeDesc, String(module), `${name}: ${JSON.stringify(body)}`);
      }
    });
  });

  test('malformed dates say "The date is invalid" (9150)', async (t) => {
    const server = await startControlPlane(t);
    const body = await raw(server, ACME, { Action: 'GetCdnRefreshLog', startDate: '2017-13-01 00:00:00', endDate: '2017-12-02 00:00:00' });
    assertRefused(body, 4000, 9150, /The date is invalid/);
  });

  test('what old clients send is accepted: PHP-style urls_0, Region=gz, blank optional values', async (t) => {
    const server = await startControlPlane(t);
    const body = await raw(server, ACME, { Action: 'RefreshCdnUrl', urls_0: url('php.js'), urls_1: url('php2.js'), Region: 'gz' });
    assert.equal(body.code, 0, JSON.stringify(body));
    assert.equal(body.data?.count, 2);
    const log = await raw(server, ACME, { Action: 'GetCdnRefreshLog', taskId: String(body.data!.task_id), url: '', host: '' });
    assert.equal(log.data?.total, 1, JSON.stringify(log));
    const push = await raw(server, ACME, { Action: 'GetPushLogs', url: '', keyword: '' });
    assert.deepEqual(push.data, { logs: [], total: 0 });
  });
});

describe('legacy v2 batch, daily and rate limits', () => {
  test('per-request limits: 1000 URLs (22043), 20 dirs (22045), 20 prefetch URLs (21002)', async (t) => {
    const server = await startControlPlane(t);
    const many = (n: number, dir = false) => Array.from({ length: n }, (_, i) => url(dir ? `d${i}/` : `u${i}.js`));
    await untouched(server, async () => {
      assertRefused(await raw(server, ACME, { Action: 'RefreshCdnUrl', ...flat('urls', many(1001)) }), 4000, 22043);
      assertRefused(await raw(server, ACME, { Action: 'RefreshCdnDir', ...flat('dirs', many(21, true)) }), 4000, 22045);
      assertRefused(await raw(server, ACME, { Action: 'CdnUrlPusher', ...flat('urls', many(21)) }), 4000, 21002);
    });
    // At the limit each is accepted.
    assert.equal((await raw(server, ACME, { Action: 'RefreshCdnUrl', ...flat('urls', many(1000)) })).data?.count, 1000);
    assert.equal((await raw(server, ACME, { Action: 'RefreshCdnDir', ...flat('dirs', many(20, true)) })).data?.count, 20);
    assert.equal((await raw(server, ACME, { Action: 'CdnUrlPusher', ...flat('urls', many(20)) })).data?.count, 20);
  });

  test('daily limits: 22044 for URLs, 22046 for dirs, 21000 for prefetch; a refused request charges nothing', async (t) => {
    const config = baseConfig();
    config.accounts![0]!.quotas = {
      purge_url: { batch: 3, daily: 3 },
      purge_prefix: { batch: 2, daily: 2 },
      prefetch_url: { batch: 2, daily: 2 },
    };
    const server = await startControlPlane(t, config);
    const ok = async (fields: Record<string, string>) => assert.equal((await raw(server, ACME, fields)).code, 0);
    await ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url('1.js'), url('2.js')]) });
    await ok({ Action: 'RefreshCdnDir', ...flat('dirs', [url('a/')]) });
    await ok({ Action: 'CdnUrlPusher', ...flat('urls', [url('p1.js')]) });
    await untouched(server, async () => {
      assertRefused(await raw(server, ACME, { Action: 'RefreshCdnUrl', ...flat('urls', [url('3.js'), url('4.js')]) }), 4000, 22044);
      assertRefused(await raw(server, ACME, { Action: 'RefreshCdnDir', ...flat('dirs', [url('b/'), url('c/')]) }), 4000, 22046);
      assertRefused(await raw(server, ACME, { Action: 'CdnUrlPusher', ...flat('urls', [url('p2.js'), url('p3.js')]) }), 4000, 21000);
    });
    // What is left can still be used.
    await ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url('3.js')]) });
    await ok({ Action: 'RefreshCdnDir', ...flat('dirs', [url('b/')]) });
    await ok({ Action: 'CdnUrlPusher', ...flat('urls', [url('p2.js')]) });
  });

  test('too many calls per second is 4400, per account and action', async (t) => {
    const config = baseConfig();
    config.accounts![0]!.rateLimit = { perSecond: 0.001, burst: 2 };
    const server = await startControlPlane(t, config);
    const fields = { Action: 'RefreshCdnUrl', ...flat('urls', [url('r.js')]) };
    assert.equal((await raw(server, ACME, fields)).code, 0);
    assert.equal((await raw(server, ACME, fields)).code, 0);
    await untouched(server, async () => assertRefused(await raw(server, ACME, fields), 4400, 9163));
    // Another action has its own bucket.
    assert.equal((await raw(server, ACME, { Action: 'GetCdnRefreshLog', taskId: 'none' })).code, 0);
  });
});
