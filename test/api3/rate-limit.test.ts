// Rate limits per account and action (TENCENT-API §3, §4: 20 requests/s; §2.7 RequestLimitExceeded):
// a burst, then refusals that write nothing; refill with time; `rateLimit: false` never throttles.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/shared/clock.ts';
import { ACME, baseConfig, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { cdnClient } from '../helpers/sdk.ts';
import { assertError, CDN, config, rawCall, snapshot, TEO, type Answer, type Caller } from './fixtures.ts';

const codes = (answers: Answer[]) => answers.map((a) => a.response.Error?.Code ?? 'ok');

async function burst(s: TestServer, clock: ManualClock, n: number, action = 'DescribePurgeQuota', version = CDN, who: Caller = ACME): Promise<string[]> {
  const out: Answer[] = [];
  for (let i = 0; i < n; i++) out.push(await rawCall(s, who, { action, version, ...(version === TEO ? { body: { ZoneId: ACME.zoneId } } : {}) }, clock));
  return codes(out);
}

test('default: 20 requests/s per account and action with a burst of 40, then RequestLimitExceeded; CDN and EdgeOne DescribePurgeTasks have separate limits', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 1));
  const s = await startControlPlane(t, baseConfig(), { clock });
  assert.deepEqual(await burst(s, clock, 41), [...Array(40).fill('ok'), 'RequestLimitExceeded']);
  // Per action: another action of the same account, and the same action name in the other product, are separate.
  assert.deepEqual(await burst(s, clock, 1, 'DescribeContentQuota', TEO), ['ok']);
  const cdnTasks = await rawCall(s, ACME, { action: 'DescribePurgeTasks', version: CDN, body: { TaskId: 'x' } }, clock);
  assert.equal(cdnTasks.response.Error, undefined);
  for (let i = 0; i < 40; i++) await rawCall(s, ACME, { action: 'DescribePurgeTasks', version: TEO, body: { Filters: [{ Name: 'job-id', Values: ['x'] }] } }, clock);
  // Regression: EdgeOne's DescribePurgeTasks used to drain CDN's bucket of the same name.
  assert.equal((await rawCall(s, ACME, { action: 'DescribePurgeTasks', version: CDN, body: { TaskId: 'x' } }, clock)).response.Error, undefined);
  // Per account.
  assert.deepEqual(await burst(s, clock, 1, 'DescribePurgeQuota', CDN, GLOBEX), ['ok']);
  // Refill: 20 tokens a second.
  clock.advance(1000);
  assert.deepEqual(await burst(s, clock, 21), [...Array(20).fill('ok'), 'RequestLimitExceeded']);
  clock.advance(50);
  assert.deepEqual(await burst(s, clock, 2), ['ok', 'RequestLimitExceeded']);
});

test('a throttled submission writes nothing; the limit is configurable per account', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 1));
  const s = await startControlPlane(t, config((a) => (a.appId === ACME.appId ? { rateLimit: { perSecond: 2, burst: 3 } } : {})), { clock });
  const submit = (i: number) =>
    rawCall(s, ACME, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/${i}`] } }, clock);
  for (let i = 0; i < 3; i++) assert.equal((await submit(i)).response.Error, undefined);
  const before = await snapshot(s, ACME.appId);
  assertError(await submit(3), 'RequestLimitExceeded');
  assertError(await submit(4), 'RequestLimitExceeded');
  assert.deepEqual(await snapshot(s, ACME.appId), before);
  clock.advance(500);
  assert.equal((await submit(5)).response.Error, undefined);
  assertError(await submit(6), 'RequestLimitExceeded');
  // GLOBEX keeps `rateLimit: false` from config(): never throttled, even with time frozen.
  assert.ok((await burst(s, clock, 150, 'DescribePurgeQuota', CDN, GLOBEX)).every((c) => c === 'ok'));
});

test('the official SDK sees RequestLimitExceeded when a real burst exceeds the limit', async (t) => {
  const s = await startControlPlane(t, config((a) => (a.appId === ACME.appId ? { rateLimit: { perSecond: 1, burst: 5 } } : {})));
  const cdn = cdnClient(s.endpoint, ACME.secretId, ACME.secretKey);
  const results = await Promise.allSettled(Array.from({ length: 12 }, () => cdn.DescribePurgeQuota({})));
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  // The burst of 5, plus at most what refills (1/s) while the 12 calls are in flight.
  assert.ok(ok >= 5 && ok <= 7, `${ok} admitted`);
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(refused.length, 12 - ok);
  for (const r of refused) assert.equal((r.reason as { code?: string }).code, 'RequestLimitExceeded');
});

test('a storm is refused after the signature check and before the body is decoded', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 1));
  const s = await startControlPlane(t, config((a) => (a.appId === ACME.appId ? { rateLimit: { perSecond: 1, burst: 1 } } : {})), { clock });
  const submit = (body: string | Record<string, unknown>, who: Caller = ACME) => rawCall(s, who, { action: 'CreatePurgeTask', version: TEO, body }, clock);
  const valid = { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/x`] };
  // Within the limit a body that is not JSON is InvalidParameter (and spends the token: it was signed).
  assertError(await submit('{"ZoneId":'), 'InvalidParameter');
  // Past it the same request is refused without its body being parsed.
  assertError(await submit('{"ZoneId":'), 'RequestLimitExceeded');
  assertError(await submit(valid), 'RequestLimitExceeded');
  // A forged request naming the throttled account is an authentication failure, not a refusal.
  assertError(await submit(valid, { secretId: ACME.secretId, secretKey: 'not-the-key' }), 'AuthFailure.SignatureFailure');
  clock.advance(1000);
  assert.equal((await submit(valid)).response.Error, undefined);
});
