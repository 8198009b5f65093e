// Legacy v2 Nonces between tenants (hardening issue, High): a Nonce is recorded only for a request that
// passed the signature, action, account and rate limit, and each account has its own share of the
// cache, so one tenant's traffic — however refused or however far in the future — never refuses
// another tenant's valid calls.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { ACME, baseConfig, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { assertRefused, flat, raw, send, signV2, snapshot, type Account, type RawOptions, type V2Body } from './helpers.ts';

const T0 = Date.UTC(2026, 5, 1, 2, 0, 0);
const WIDE = { startDate: '2000-01-01 00:00:00', endDate: '2099-12-31 23:59:59' };

/** baseConfig with `rateLimit` for one account, or for every account. */
function rateLimited(rateLimit: { perSecond: number; burst: number }, appId?: number): ConfigInput {
  const base = baseConfig();
  return { ...base, accounts: base.accounts!.map((a) => (appId === undefined || a.appId === appId ? { ...a, rateLimit } : a)) };
}

/** GLOBEX at a crawl: a burst of 4 per action, one more per 1000 s → a share of 5 × (4 + 8) = 60 Nonces. */
const crawlingGlobex = () => rateLimited({ perSecond: 0.001, burst: 4 }, GLOBEX.appId);
const GLOBEX_SHARE = 5 * (4 + Math.ceil(0.001 * 7201));

/** One valid call of each of the five legacy actions. */
const everyAction = (host: string, n: number): Record<string, string>[] => [
  { Action: 'RefreshCdnUrl', ...flat('urls', [`https://${host}/u${n}`]) },
  { Action: 'RefreshCdnDir', ...flat('dirs', [`https://${host}/d${n}/`]) },
  { Action: 'CdnUrlPusher', ...flat('urls', [`https://${host}/p${n}`]) },
  { Action: 'GetCdnRefreshLog', ...WIDE },
  { Action: 'GetPushLogs', ...WIDE },
];

function tenant(server: TestServer, clock: ManualClock, who: Account) {
  return (fields: Record<string, string>, o: RawOptions = {}): Promise<V2Body> => raw(server, who, fields, { nowMs: clock.now(), ...o });
}

describe('legacy v2 Nonces are kept per account', () => {
  test("one tenant's flood (unknown actions, far-future Timestamps, throttled and forged calls) never refuses another tenant's valid calls", async (t) => {
    const clock = new ManualClock(T0);
    const server = await startControlPlane(t, crawlingGlobex(), { clock });
    const globex = tenant(server, clock, GLOBEX);
    const acme = tenant(server, clock, ACME);
    const future = () => Math.floor(clock.now() / 1000) + 7190;
    let n = 0;
    const acmeStillServed = async () => {
      for (const fields of everyAction(ACME.host, n++)) {
        const body = await acme(fields);
        assert.equal(body.code, 0, `ACME ${fields['Action']}: ${JSON.stringify(body)}`);
      }
    };

    // Refused traffic, all signed with GLOBEX's real key and far-future Timestamps: none of it may use up a Nonce.
    const refused: Promise<V2Body>[] = [];
    for (let i = 0; i < 300; i++) refused.push(globex({ Action: 'NoSuchAction', 'urls.0': `https://${GLOBEX.host}/${i}` }, { timestamp: future() }));
    for (let i = 0; i < 100; i++) refused.push(globex({ Action: 'RefreshCdnUrl', ...flat('urls', [`https://${GLOBEX.host}/f${i}`]) }, { timestamp: future(), signKey: 'not-globex-key-000000000' }));
    for (const body of await Promise.all(refused.splice(0))) assert.ok(body.code === 6100 || body.code === 4100, JSON.stringify(body));
    await acmeStillServed();

    // GLOBEX's burst of 4 per action passes; the rest of a 300-call burst is throttled (4400) and records nothing.
    let admitted = 0;
    for (let i = 0; i < 60; i++) {
      for (const fields of everyAction(GLOBEX.host, 1000 + i)) {
        const body = await globex(fields, { timestamp: future() });
        if (body.code === 0) admitted++;
        else assertRefused(body, 4400, 9163, /per second/);
      }
    }
    assert.equal(admitted, 5 * 4);
    await acmeStillServed();

    // GLOBEX fills its own share with valid far-future calls at its full rate: exactly GLOBEX_SHARE are
    // admitted (none of the refusals above counted), then only GLOBEX is refused.
    for (let round = 0; admitted < GLOBEX_SHARE; round++) {
      assert.ok(round < 20, 'the share never filled');
      clock.advance(1_001_000);
      for (const fields of everyAction(GLOBEX.host, 2000 + round)) {
        assert.equal((await globex(fields, { timestamp: future() })).code, 0);
        admitted++;
      }
      await acmeStillServed();
    }
    assert.equal(admitted, GLOBEX_SHARE);
    clock.advance(1_001_000);
    assertRefused(await globex(everyAction(GLOBEX.host, 3000)[0]!, { timestamp: future() }), 4400, 9163, /replay window/);
    await acmeStillServed();
  });

  test('a call refused for its rate limit keeps its Nonce: the same signed request passes once the bucket refills', async (t) => {
    const clock = new ManualClock(T0);
    const server = await startControlPlane(t, rateLimited({ perSecond: 1, burst: 1 }), { clock });
    const fields = { Action: 'GetCdnRefreshLog', ...WIDE };
    assert.equal((await raw(server, ACME, fields, { nowMs: clock.now() })).code, 0);
    const throttled = signV2(server, ACME, fields, { nowMs: clock.now() });
    assertRefused(await send(server, throttled), 4400, 9163);
    clock.advance(1000);
    assert.equal((await send(server, throttled)).code, 0, 'the throttled request had not used up its Nonce');
    assertRefused(await send(server, throttled), 4500);
  });

  test('ten concurrent copies of one signed request create one job (the Nonce is recorded before the action runs)', async (t) => {
    const server = await startControlPlane(t);
    const before = await snapshot(server, ACME.appId);
    const signed = signV2(server, ACME, { Action: 'RefreshCdnUrl', ...flat('urls', [`https://${ACME.host}/once.js`]) });
    const answers = await Promise.all(Array.from({ length: 10 }, () => send(server, signed)));
    assert.deepEqual(answers.map((a) => a.code).sort(), [0, ...Array(9).fill(4500)]);
    assert.equal((await snapshot(server, ACME.appId)).jobs.length, before.jobs.length + 1);
  });

  test('a replay is refused before it spends the rate limit of the account it copies', async (t) => {
    const clock = new ManualClock(T0);
    const server = await startControlPlane(t, rateLimited({ perSecond: 1, burst: 2 }), { clock });
    const fields = { Action: 'GetCdnRefreshLog', ...WIDE };
    const captured = signV2(server, ACME, fields, { nowMs: clock.now() });
    assert.equal((await send(server, captured)).code, 0);
    for (let i = 0; i < 5; i++) assertRefused(await send(server, captured), 4500);
    assert.equal((await raw(server, ACME, fields, { nowMs: clock.now() })).code, 0, 'the replays took no token');
  });
});
