// API 3.0 requests signed with HmacSHA1/HmacSHA256 carry Nonce + Timestamp "to prevent replay"
// (TENCENT-API §2.5; hardening issue: a replayed body created 3 jobs and charged 3 quota units). They
// are guarded as legacy v2 is: one accepted request per (SecretId, Timestamp, Nonce, Signature).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hmacSign, hmacStringToSign } from '../../src/protocols/hmac-signature.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { ACME, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { assertError, assertOk, CDN, config, parseAnswer, snapshot, TEO, type Answer } from './fixtures.ts';

interface V1Request {
  readonly method: 'GET' | 'POST';
  readonly encoded: string;
}

/** A v1 request (§2.5) signed like the Node SDK: every param sorted, raw values, Host with port. */
function signV1(s: TestServer, clock: ManualClock, method: 'GET' | 'POST', sm: 'HmacSHA1' | 'HmacSHA256', fields: Record<string, string>): V1Request {
  const params: Record<string, string> = {
    Timestamp: String(Math.floor(clock.now() / 1000)),
    Nonce: String(Math.floor(Math.random() * 65536)),
    SecretId: ACME.secretId,
    SignatureMethod: sm,
    ...fields,
  };
  params['Signature'] = hmacSign(ACME.secretKey, hmacStringToSign(method, s.endpoint, '/', params, sm, 'raw'), sm);
  return { method, encoded: new URLSearchParams(params).toString() };
}

async function send(s: TestServer, r: V1Request): Promise<Answer> {
  const res =
    r.method === 'GET'
      ? await fetch(`${s.url}/?${r.encoded}`)
      : await fetch(`${s.url}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: r.encoded });
  return parseAnswer(res);
}

const purge = (path: string) => ({ Action: 'CreatePurgeTask', Version: TEO, ZoneId: ACME.zoneId, Type: 'purge_url', 'Targets.0': `http://${ACME.host}/${path}` });

describe('API 3.0 v1 replay protection', () => {
  for (const method of ['POST', 'GET'] as const) {
    for (const sm of ['HmacSHA1', 'HmacSHA256'] as const) {
      test(`a replayed ${sm} ${method} request is refused (AuthFailure.ReplayAttack): one job, one quota unit`, async (t) => {
        const clock = new ManualClock(Date.UTC(2026, 2, 1, 4, 0, 0));
        const s = await startControlPlane(t, config(), { clock });
        const signed = signV1(s, clock, method, sm, purge(`${method}-${sm}.js`));
        const first = assertOk(await send(s, signed));
        const after = await snapshot(s, ACME.appId);
        clock.advance(60_000);
        assertError(await send(s, signed), 'AuthFailure.ReplayAttack', /Nonce/);
        assertError(await send(s, signed), 'AuthFailure.ReplayAttack');
        assert.deepEqual(await snapshot(s, ACME.appId), after, 'a replay created a job or charged quota');
        assert.equal((await s.store.jobTasks(ACME.appId, String(first.JobId))).length, 1);
        // Outside the 300 s window the same request is expired, never accepted again.
        clock.advance(241_000);
        assertError(await send(s, signed), 'AuthFailure.SignatureExpire');
      });
    }
  }

  test('a v1 call refused for its rate limit keeps its Nonce; a fresh Nonce is a new request', async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 2, 1, 4, 0, 0));
    const s = await startControlPlane(t, config((a) => (a.appId === ACME.appId ? { rateLimit: { perSecond: 1, burst: 1 } } : {})), { clock });
    const quota = { Action: 'DescribePurgeQuota', Version: CDN };
    assertOk(await send(s, signV1(s, clock, 'POST', 'HmacSHA1', quota)));
    const throttled = signV1(s, clock, 'POST', 'HmacSHA1', quota);
    assertError(await send(s, throttled), 'RequestLimitExceeded');
    clock.advance(1000);
    assertOk(await send(s, throttled));
    assertError(await send(s, throttled), 'AuthFailure.ReplayAttack');
  });
});
