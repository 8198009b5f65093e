// Rate limits per account and action (TENCENT-API §3, §4: 20 requests/s; §2.7 RequestLimitExceeded):
// a burst, then refusals that write nothing; refill with time; `rateLimit: false` never throttles.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { signTc3Request } from '../../src/protocols/tc3/tc3-signature.ts';
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

test('a storm is refused after the signature check and before the body is decoded; once the limit is spent, before the body is read', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 1));
  const s = await startControlPlane(t, config((a) => (a.appId === ACME.appId ? { rateLimit: { perSecond: 1, burst: 1 } } : {})), { clock });
  const submit = (body: string | Record<string, unknown>, who: Caller = ACME) => rawCall(s, who, { action: 'CreatePurgeTask', version: TEO, body }, clock);
  const valid = { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/x`] };
  const forger: Caller = { secretId: ACME.secretId, secretKey: 'not-the-key' };
  // With tokens left a forged request naming the account is an authentication failure, and spends none.
  assertError(await submit(valid, forger), 'AuthFailure.SignatureFailure');
  // Within the limit a body that is not JSON is InvalidParameter (and spends the token: it was signed).
  assertError(await submit('{"ZoneId":'), 'InvalidParameter');
  // Past it the same request is refused without its body being parsed.
  assertError(await submit('{"ZoneId":'), 'RequestLimitExceeded');
  assertError(await submit(valid), 'RequestLimitExceeded');
  // Once the account has no token left, anything naming its key is refused before the body is read
  // or the signature checked: a forged request too. It learns the account is over its limit, spends nothing.
  assertError(await submit(valid, forger), 'RequestLimitExceeded');
  // Its headers alone are answered (the body, declared but never sent, is not waited for).
  const headers = signTc3Request({ secretId: ACME.secretId, secretKey: ACME.secretKey, host: s.endpoint, service: 'teo', action: 'CreatePurgeTask', version: TEO, timestamp: Math.floor(clock.now() / 1000), body: JSON.stringify(valid), method: 'POST', contentType: 'application/json' });
  const head = `POST / HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Length: 1000\r\n\r\n`;
  const early = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(new URL(s.url).port), '127.0.0.1', () => socket.write(head));
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('"RequestId"')) resolve(got);
    });
    socket.on('error', reject);
    setTimeout(() => reject(new Error(`no answer before the body: ${got}`)), 2000).unref();
    t.after(() => socket.destroy());
  });
  assert.match(early, /"Code":"RequestLimitExceeded"/);
  // Refused with their bodies unread, 30 pipelined requests on one keep-alive connection are 30 answers.
  const pipelined = await new Promise<string>((resolve, reject) => {
    const body = JSON.stringify(valid);
    const one = `POST / HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Length: ${body.length}\r\n\r\n${body}`;
    const socket = connect(Number(new URL(s.url).port), '127.0.0.1', () => socket.write(one.repeat(30)));
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if ((got.match(/"RequestId"/g) ?? []).length === 30) resolve(got);
    });
    socket.on('error', reject);
    setTimeout(() => reject(new Error(`not 30 answers: ${got.length}`)), 5000).unref();
    t.after(() => socket.destroy());
  });
  assert.equal((pipelined.match(/"Code":"RequestLimitExceeded"/g) ?? []).length, 30);
  // No refusal spent anything: a second later the one token is there for a signed request.
  clock.advance(1000);
  assertError(await submit(valid, forger), 'AuthFailure.SignatureFailure');
  assert.equal((await submit(valid)).response.Error, undefined);
  assertError(await submit(valid), 'RequestLimitExceeded');
});

test('the early refusal goes only on the account a key belongs to, per action: others, and other actions of that account, are served', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 1));
  const s = await startControlPlane(t, config(() => ({ rateLimit: { perSecond: 1, burst: 1 } })), { clock });
  const submit = (who: Caller) => rawCall(s, who, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: who === ACME ? ACME.zoneId : GLOBEX.zoneId, Type: 'purge_url', Targets: [`http://${who === ACME ? ACME.host : GLOBEX.host}/x`] } }, clock);
  assert.equal((await submit(ACME)).response.Error, undefined);
  assertError(await submit(ACME), 'RequestLimitExceeded');
  assert.equal((await submit(GLOBEX)).response.Error, undefined);
  assert.equal((await rawCall(s, ACME, { action: 'DescribeContentQuota', version: TEO, body: { ZoneId: ACME.zoneId } }, clock)).response.Error, undefined);
  // An unknown key, or one whose header names the throttled key with another's key, goes through the signature check.
  assertError(await submit({ secretId: 'AKIDnobodynobodynobodynobody0000', secretKey: 'x' }), 'AuthFailure.SecretIdNotFound');
});
