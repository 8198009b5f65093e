// Every API 3.0 refusal the issue lists, sent as raw HTTP signed with our own TC3 signer (forged,
// expired, wrong host, unknown key, malformed) or the official SDK; each answer is HTTP 200,
// Content-Type exactly application/json, Response.Error + RequestId, and nothing is written
// (TENCENT-API §2.6-§2.7, §7; DESIGN invariant 8).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, test } from 'node:test';
import { signTc3Request } from '../../src/protocols/tc3/tc3-signature.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { ACME, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { sdkError, teoClient } from '../helpers/sdk.ts';
import { assertError, assertOk, CDN, config, parseAnswer, rawCall, snapshot, TEO, type RawCall } from './fixtures.ts';

const purge = (target = `http://${ACME.host}/a.txt`) => ({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [target] });

/** Runs `body` and asserts that ACME's history and quota counters did not change. */
async function writesNothing(s: TestServer, body: () => Promise<void>): Promise<void> {
  const before = await snapshot(s, ACME.appId);
  await body();
  assert.deepEqual(await snapshot(s, ACME.appId), before);
}

const call = (s: TestServer, c: RawCall) => rawCall(s, ACME, c);

describe('authentication (TC3, our own signer)', () => {
  test('a correctly signed raw request is accepted; Host is tried as sent and without the port', async (t) => {
    const s = await startControlPlane(t, config());
    assertOk(await call(s, { action: 'CreatePurgeTask', version: TEO, body: purge() }));
    assertOk(await call(s, { action: 'CreatePurgeTask', version: TEO, body: purge(), host: '127.0.0.1' }));
    // The scope's service is taken as sent (the Node SDK puts the endpoint's first label there).
    assertOk(await call(s, { action: 'DescribePurgeQuota', version: CDN, service: '127' }));
    // `application/json; charset=utf-8` (the docs' examples) is JSON too.
    assertOk(await call(s, { action: 'DescribePurgeQuota', version: CDN, contentType: 'application/json; charset=utf-8' }));
    // The raw body is hashed: Python's json.dumps spacing and \uXXXX escapes verify as sent (§2.4).
    const python = `{"ZoneId": "${ACME.zoneId}", "Type": "purge_url", "Targets": ["http://${ACME.host}/\\u4e2d\\u6587.jpg"]}`;
    const r = assertOk(await call(s, { action: 'CreatePurgeTask', version: TEO, body: python }));
    assert.equal((await s.store.jobTasks(ACME.appId, String(r.JobId)))[0]?.target, `http://${ACME.host}/中文.jpg`);
  });

  test('forged: wrong key, tampered body, wrong signed host, other action → AuthFailure.SignatureFailure', async (t) => {
    const s = await startControlPlane(t, config());
    await writesNothing(s, async () => {
      assertError(await rawCall(s, { secretId: ACME.secretId, secretKey: 'not-the-key-000000000000' }, { action: 'CreatePurgeTask', version: TEO, body: purge() }), 'AuthFailure.SignatureFailure');
      assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body: purge(), host: 'cdn.tencentcloudapi.com' }), 'AuthFailure.SignatureFailure');
      assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body: purge(), host: `127.0.0.1:${s.port + 1}` }), 'AuthFailure.SignatureFailure');
      // Signed for one body, sent with another.
      const signed = signTc3Request({
        secretId: ACME.secretId, secretKey: ACME.secretKey, host: s.endpoint, service: 'teo', action: 'CreatePurgeTask',
        version: TEO, timestamp: Math.floor(Date.now() / 1000), body: JSON.stringify(purge()), method: 'POST', contentType: 'application/json',
      });
      const tampered = JSON.stringify(purge(`http://${ACME.host}/evil`));
      assertError(await parseAnswer(await fetch(`${s.url}/`, { method: 'POST', headers: { ...signed, Host: '' }, body: tampered })), 'AuthFailure.SignatureFailure');
      // Content-Type is signed: changing it breaks the signature.
      assertError(await parseAnswer(await fetch(`${s.url}/`, { method: 'POST', headers: { ...signed, 'Content-Type': 'application/json; charset=utf-8' }, body: JSON.stringify(purge()) })), 'AuthFailure.SignatureFailure');
    });
  });

  test('SignedHeaders naming constructor or __proto__ → AuthFailure.SignatureFailure, not InternalError (prototype keys are not headers)', async (t) => {
    const s = await startControlPlane(t, config());
    const signed = signTc3Request({
      secretId: ACME.secretId, secretKey: ACME.secretKey, host: s.endpoint, service: 'teo', action: 'CreatePurgeTask',
      version: TEO, timestamp: Math.floor(Date.now() / 1000), body: JSON.stringify(purge()), method: 'POST', contentType: 'application/json',
    });
    await writesNothing(s, async () => {
      for (const name of ['constructor', '__proto__', 'tostring']) {
        const headers = { ...signed, Host: '', Authorization: signed.Authorization!.replace('SignedHeaders=content-type;host', `SignedHeaders=content-type;host;${name}`) };
        const answer = await parseAnswer(await fetch(`${s.url}/`, { method: 'POST', headers, body: JSON.stringify(purge()) }));
        assertError(answer, 'AuthFailure.SignatureFailure', new RegExp(`${name} absent`));
      }
    });
  });

  test('expired or future timestamps (±300 s) → AuthFailure.SignatureExpire; 299 s is still fine', async (t) => {
    const s = await startControlPlane(t, config());
    const now = Math.floor(Date.now() / 1000);
    await writesNothing(s, async () => {
      for (const timestamp of [now - 302, now + 302, now - 86_400]) {
        assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body: purge(), timestamp }), 'AuthFailure.SignatureExpire');
      }
      assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body: purge(), headers: { 'X-TC-Timestamp': 'soon' } }), 'InvalidParameter');
    });
    assertOk(await call(s, { action: 'DescribePurgeQuota', version: CDN, timestamp: now - 298 }));
  });

  test('unknown SecretId → AuthFailure.SecretIdNotFound', async (t) => {
    const s = await startControlPlane(t, config());
    await writesNothing(s, async () => {
      const a = await rawCall(s, { secretId: 'AKIDunknown000000000000000000000000', secretKey: ACME.secretKey }, { action: 'CreatePurgeTask', version: TEO, body: purge() });
      assertError(a, 'AuthFailure.SecretIdNotFound');
      // Through the SDK too.
      const e = await sdkError(teoClient(s.endpoint, `${ACME.secretId}x`, ACME.secretKey).CreatePurgeTask(purge()));
      assert.equal(e.code, 'AuthFailure.SecretIdNotFound');
    });
  });

  test('malformed Authorization → AuthFailure.InvalidAuthorization', async (t) => {
    const s = await startControlPlane(t, config());
    const good = signTc3Request({
      secretId: ACME.secretId, secretKey: ACME.secretKey, host: s.endpoint, service: 'teo', action: 'CreatePurgeTask',
      version: TEO, timestamp: Math.floor(Date.now() / 1000), body: JSON.stringify(purge()), method: 'POST', contentType: 'application/json',
    });
    const auth = good.Authorization!;
    await writesNothing(s, async () => {
      for (const bad of [
        'Bearer abc',
        auth.replace('TC3-HMAC-SHA256', 'TC3-HMAC-SHA1'),
        auth.replace(/, Signature=[0-9a-f]+/, ''),
        auth.replace('/tc3_request', '/tc4_request'),
        auth.replace('SignedHeaders=content-type;host', 'SignedHeaders=content-type'),
        auth.replace(/Signature=[0-9a-f]+/, 'Signature=xyz'),
        auth.replace(/Credential=[^/]+\/\d{4}-\d{2}-\d{2}/, `Credential=${ACME.secretId}/yesterday`),
        `${auth}, Extra=1`,
      ]) {
        const res = await fetch(`${s.url}/`, { method: 'POST', headers: { ...good, Host: '', Authorization: bad }, body: JSON.stringify(purge()) });
        assertError(await parseAnswer(res), 'AuthFailure.InvalidAuthorization');
      }
    });
  });

  test('TC3 has no nonce: a replay inside the window is accepted (as by Tencent), outside it expires', async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 2, 1, 4, 0, 0));
    const s = await startControlPlane(t, config(), { clock });
    const body = JSON.stringify(purge());
    const headers = signTc3Request({
      secretId: ACME.secretId, secretKey: ACME.secretKey, host: s.endpoint, service: 'teo', action: 'CreatePurgeTask',
      version: TEO, timestamp: Math.floor(clock.now() / 1000), body, method: 'POST', contentType: 'application/json',
    });
    const send = async () => parseAnswer(await fetch(`${s.url}/`, { method: 'POST', headers: { ...headers, Host: '' }, body }));
    const first = assertOk(await send());
    clock.advance(120_000);
    const second = assertOk(await send());
    assert.notEqual(first.JobId, second.JobId);
    clock.advance(181_000);
    await writesNothing(s, async () => assertError(await send(), 'AuthFailure.SignatureExpire'));
  });
});

describe('request shape', () => {
  test('HTTP methods other than GET and POST → UnsupportedProtocol', async (t) => {
    const s = await startControlPlane(t, config());
    await writesNothing(s, async () => {
      for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        const res = await fetch(`${s.url}/`, { method, body: method === 'OPTIONS' ? null : JSON.stringify(purge()) });
        assertError(await parseAnswer(res), 'UnsupportedProtocol');
      }
      // A PUT that is otherwise perfectly signed.
      const body = JSON.stringify(purge());
      const headers = signTc3Request({
        secretId: ACME.secretId, secretKey: ACME.secretKey, host: s.endpoint, service: 'teo', action: 'CreatePurgeTask',
        version: TEO, timestamp: Math.floor(Date.now() / 1000), body, method: 'POST', contentType: 'application/json',
      });
      assertError(await parseAnswer(await fetch(`${s.url}/`, { method: 'PUT', headers: { ...headers, Host: '' }, body })), 'UnsupportedProtocol');
    });
  });

  test('a 12 MB body is refused quickly with RequestSizeLimitExceeded and the server stays up', async (t) => {
    const s = await startControlPlane(t, config());
    const big = Buffer.alloc(12 * 1024 * 1024, 0x20);
    await writesNothing(s, async () => {
      let started = Date.now();
      const declared = await call(s, { action: 'CreatePurgeTask', version: TEO, body: big });
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      assertError(declared, 'RequestSizeLimitExceeded');

      // Chunked, no Content-Length: refused once the count passes the limit; the rest is not read.
      started = Date.now();
      const answer = await new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' } }, (res) => {
          assert.equal(res.headers['content-type'], 'application/json');
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text));
        });
        // The server may close while we still write; that is the point.
        req.on('error', (e) => (e.message.includes('EPIPE') || e.message.includes('ECONNRESET') ? undefined : reject(e)));
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          while (sent < big.length) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      });
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      assert.equal((JSON.parse(answer) as { Response: { Error: { Code: string } } }).Response.Error.Code, 'RequestSizeLimitExceeded');
    });
    assertOk(await call(s, { action: 'CreatePurgeTask', version: TEO, body: purge() }));
  });

  test('TC3 GET with a 30 KB query is served (the docs cap GET at 32 KB); longer headers get RequestSizeLimitExceeded in the envelope', async (t) => {
    const s = await startControlPlane(t, config());
    const get = teoClient(s.endpoint, ACME.secretId, ACME.secretKey, 'TC3-HMAC-SHA256', 'GET');
    const targets = (n: number) => Array.from({ length: n }, (_, i) => `http://${ACME.host}/a/fairly/long/path/to/file-${i}.jpg`);
    // Regression: Node's 16 KB header limit answered HTTP 431 without the JSON envelope.
    const out = await get.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: targets(400) });
    assert.equal((await s.store.jobTasks(ACME.appId, out.JobId)).length, 400);
    await writesNothing(s, async () => {
      const e = await sdkError(get.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: targets(1000) }));
      assert.equal(e.code, 'RequestSizeLimitExceeded');
      const res = await fetch(`${s.url}/?${'a'.repeat(70_000)}`);
      assertError(await parseAnswer(res), 'RequestSizeLimitExceeded');
    });
    assertOk(await call(s, { action: 'DescribePurgeQuota', version: CDN }));
  });

  test('malformed JSON, non-object JSON, invalid UTF-8 and malformed forms → InvalidParameter', async (t) => {
    const s = await startControlPlane(t, config());
    await writesNothing(s, async () => {
      for (const body of ['{"ZoneId":', '{ZoneId: 1}', '[]', '"text"', 'null', '42', '{"a":1}{"b":2}', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]) {
        assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body }), 'InvalidParameter', undefined);
      }
      const form = 'application/x-www-form-urlencoded';
      for (const body of ['ZoneId=%E0%A4%A&Type=purge_url', 'Targets.0=a&Targets.0=b', 'Targets.0=x&Targets=y', '=x']) {
        const a = await call(s, { action: 'CreatePurgeTask', version: TEO, body, contentType: form });
        assert.match(a.response.Error?.Code ?? '', /^InvalidParameter/, body);
      }
      assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body: JSON.stringify(purge()), contentType: 'text/plain' }), 'InvalidParameter');
      // v1 (no Authorization) with the common parameters missing.
      assertError(await parseAnswer(await fetch(`${s.url}/`, { method: 'POST', headers: { 'Content-Type': form }, body: 'Action=CreatePurgeTask&Version=2022-09-01' })), 'MissingParameter');
      assertError(await parseAnswer(await fetch(`${s.url}/?Action=DescribePurgeQuota`)), 'MissingParameter');
      assertError(
        await parseAnswer(await fetch(`${s.url}/`, { method: 'POST', headers: { 'Content-Type': form }, body: `Action=DescribePurgeQuota&Version=2018-06-06&SecretId=${ACME.secretId}&Timestamp=${Math.floor(Date.now() / 1000)}&Nonce=1&Signature=x&SignatureMethod=MD5` })),
        'InvalidParameterValue',
      );
    });
  });

  test('TC3 POST form and TC3 GET with a raw query carry the same fields as JSON', async (t) => {
    const s = await startControlPlane(t, config());
    const form = `ZoneId=${ACME.zoneId}&Type=purge_url&Targets.0=${encodeURIComponent(`http://${ACME.host}/form`)}&EncodeUrl=False`;
    const a = assertOk(await call(s, { action: 'CreatePurgeTask', version: TEO, body: form, contentType: 'application/x-www-form-urlencoded' }));
    const g = assertOk(await call(s, { action: 'DescribePurgeTasks', version: TEO, method: 'GET', query: `Filters.0.Name=job-id&Filters.0.Values.0=${String(a.JobId)}&Limit=5` }));
    assert.equal(g.TotalCount, 1);
  });

  test('wrong types, empty arrays and control characters get an error code; nothing is written', async (t) => {
    const s = await startControlPlane(t, config());
    // Thunks: the calls run one after another, so a failure names its case.
    const teo = (body: Record<string, unknown>) => () => call(s, { action: 'CreatePurgeTask', version: TEO, body });
    const cdn = (action: string, body: Record<string, unknown>) => () => call(s, { action, version: CDN, body });
    const raw = (c: RawCall) => () => call(s, c);
    const range = { StartTime: new Date(Date.now() - 60_000).toISOString(), EndTime: new Date().toISOString() };
    await writesNothing(s, async () => {
      const P = 'InvalidParameter.ParameterError';
      const cases: Array<[() => ReturnType<typeof call>, string]> = [
        // wrong types
        [teo({ ...purge(), ZoneId: 7 }), P],
        [teo({ ...purge(), Type: ['purge_url'] }), P],
        [teo({ ...purge(), Targets: `http://${ACME.host}/a` }), P],
        [teo({ ...purge(), Targets: { 0: `http://${ACME.host}/a` } }), P],
        [teo({ ...purge(), Targets: [[`http://${ACME.host}/a`]] }), 'InvalidParameter.Target'],
        [teo({ ...purge(), EncodeUrl: 'yes' }), P],
        [teo({ ...purge(), CacheTag: ['x'] }), P],
        [teo({ ...purge(), Type: 'purge_cache_tag', CacheTag: { Domains: 'www.acme.com' } }), P],
        [raw({ action: 'DescribePurgeTasks', version: TEO, body: { ...range, Limit: '20x' } }), P],
        [raw({ action: 'DescribePurgeTasks', version: TEO, body: { ...range, Filters: { Name: 'job-id' } } }), P],
        [raw({ action: 'DescribePurgeTasks', version: TEO, body: { ...range, Filters: [{ Name: 'job-id', Values: 'x' }] } }), P],
        [raw({ action: 'DescribePurgeTasks', version: TEO, body: { ...range, StartTime: 1_700_000_000 } }), P],
        [raw({ action: 'DescribePurgeTasks', version: TEO, body: { ...range, StartTime: '2026-01-01 00:00:00' } }), P],
        [cdn('PurgeUrlsCache', { Urls: [`http://${ACME.host}/a`], UrlEncode: 'sometimes' }), 'InvalidParameter.CdnParamError'],
        [cdn('PurgePathCache', { Paths: `http://${ACME.host}/d/`, FlushType: 'flush' }), 'InvalidParameter.CdnParamError'],
        [cdn('DescribePurgeTasks', { TaskId: 12345 }), 'InvalidParameter.CdnParamError'],
        // empty arrays
        [teo({ ...purge(), Targets: [] }), P],
        [teo({ ZoneId: ACME.zoneId, Type: 'purge_url' }), P],
        [raw({ action: 'CreatePrefetchTask', version: TEO, body: { ZoneId: ACME.zoneId, Targets: [] } }), P],
        [cdn('PurgeUrlsCache', { Urls: [] }), 'InvalidParameter.CdnParamError'],
        [cdn('PurgePathCache', { Paths: [], FlushType: 'flush' }), 'InvalidParameter.CdnParamError'],
        [cdn('PushUrlsCache', { Urls: [] }), 'InvalidParameter.CdnParamError'],
        // control characters
        [teo({ ...purge(), ZoneId: `${ACME.zoneId}\u0000` }), P],
        [teo(purge(`http://${ACME.host}/a\u0007b`)), 'InvalidParameter.Target'],
        [teo(purge(`http://${ACME.host}/a\nb`)), 'InvalidParameter.Target'],
        [teo({ ZoneId: ACME.zoneId, Type: 'purge_host', Targets: [`${ACME.host}\r`] }), 'InvalidParameter.Target'],
        [teo({ ZoneId: ACME.zoneId, Type: 'purge_cache_tag', Targets: ['tag\u001f'] }), 'InvalidParameter.Target'],
        [raw({ action: 'DescribePurgeTasks', version: TEO, body: { ...range, Filters: [{ Name: 'target', Values: ['a\u007fb'] }] } }), P],
        [cdn('PurgeUrlsCache', { Urls: [`http://${ACME.host}/\u0001`] }), 'InvalidParameter.CdnParamError'],
        [cdn('DescribePurgeTasks', { TaskId: 'x', Keyword: 'www.acme.com\u0000' }), 'InvalidParameter.CdnParamError'],
        [raw({ action: 'CreatePurgeTask', version: TEO, body: `ZoneId=${ACME.zoneId}&Type=purge_url&Targets.0=http%3A%2F%2Fwww.acme.com%2F%00`, contentType: 'application/x-www-form-urlencoded' }), 'InvalidParameter.Target'],
        [raw({ action: 'CreatePurgeTask', version: TEO, body: 'Zone%01Id=x', contentType: 'application/x-www-form-urlencoded' }), 'InvalidParameter'],
      ];
      for (const [i, [send, code]] of cases.entries()) {
        const a = await send();
        assert.equal(a.response.Error?.Code, code, `case ${i}: ${JSON.stringify(a.response)}`);
        assertError(a, code);
      }
    });
  });

  test('InvalidAction, NoSuchVersion, MissingParameter, UnknownParameter', async (t) => {
    const s = await startControlPlane(t, config());
    await writesNothing(s, async () => {
      assertError(await call(s, { action: 'CreatePurgeTasks', version: TEO, body: purge() }), 'InvalidAction');
      assertError(await call(s, { action: 'PurgeUrlsCache', version: TEO, body: { Urls: [] } }), 'InvalidAction');
      assertError(await call(s, { action: 'CreatePurgeTask', version: CDN, body: purge() }), 'InvalidAction');
      assertError(await call(s, { action: 'CreatePurgeTask', version: '2022-01-07', body: purge() }), 'NoSuchVersion');
      assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body: { Type: 'purge_url', Targets: [`http://${ACME.host}/a`] } }), 'MissingParameter', /ZoneId/);
      assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: ACME.zoneId, Targets: [] } }), 'MissingParameter', /Type/);
      assertError(await call(s, { action: 'PurgeUrlsCache', version: CDN, body: {} }), 'MissingParameter', /Urls/);
      assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body: purge(), headers: { 'X-TC-Action': '' } }), 'MissingParameter');
      assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body: { ...purge(), Zone: 'x' } }), 'UnknownParameter', /Zone/);
      assertError(await call(s, { action: 'CreatePurgeTask', version: TEO, body: { ...purge(), CacheTag: { Domains: [ACME.host], Tags: [] } } }), 'UnknownParameter', /CacheTag\.Tags/);
      assertError(await call(s, { action: 'PurgeUrlsCache', version: CDN, body: { Urls: [`http://${ACME.host}/a`], FlushType: 'flush' } }), 'UnknownParameter');
    });
  });

  test('unexpected failures leave as InternalError without detail', async (t) => {
    const s = await startControlPlane(t, config());
    await s.store.close();
    const a = await call(s, { action: 'CreatePurgeTask', version: TEO, body: purge() });
    assertError(a, 'InternalError');
    assert.doesNotMatch(a.response.Error!.Message, /sqlite|database|at /i);
  });

  test('every action answers with Content-Type exactly application/json, success and error alike', async (t) => {
    const s = await startControlPlane(t, config());
    const range = { StartTime: new Date(Date.now() - 60_000).toISOString(), EndTime: new Date().toISOString() };
    const day = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
    const actions: Array<[string, string, Record<string, unknown>]> = [
      ['CreatePurgeTask', TEO, purge()],
      ['DescribePurgeTasks', TEO, range],
      ['CreatePrefetchTask', TEO, { ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/p`] }],
      ['DescribePrefetchTasks', TEO, range],
      ['DescribeContentQuota', TEO, { ZoneId: ACME.zoneId }],
      ['PurgeUrlsCache', CDN, { Urls: [`http://${ACME.host}/u`] }],
      ['PurgePathCache', CDN, { Paths: [`http://${ACME.host}/d/`], FlushType: 'delete' }],
      ['DescribePurgeTasks', CDN, { StartTime: `${day} 00:00:00` }],
      ['DescribePurgeQuota', CDN, {}],
      ['PushUrlsCache', CDN, { Urls: [`http://${ACME.host}/w`] }],
      ['DescribePushTasks', CDN, { StartTime: `${day} 00:00:00` }],
      ['DescribePushQuota', CDN, {}],
    ];
    for (const [action, version, body] of actions) {
      const ok = await call(s, { action, version, body });
      assertOk(ok);
      const bad = await call(s, { action, version, body: { ...body, Bogus: 1 } });
      assertError(bad, 'UnknownParameter');
    }
  });
});
