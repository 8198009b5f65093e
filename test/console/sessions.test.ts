// Console sessions, CSRF and origin checks, cookies, and the sign-in brake: the pure logic, on a manual clock.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { csrfTokenValid, readCookie, sameOrigin, sessionCookie, SessionStore } from '../../src/console/sessions.ts';
import { SignInThrottle } from '../../src/console/sign-in-throttle.ts';
import { ManualClock } from '../../src/shared/clock.ts';

const ACCOUNT = { appId: 1, secretId: 'AKIDone00000', secretKey: 'key-one-0000000000' };

describe('SessionStore', () => {
  test('a session is found by its cookie only, and each sign-in gets fresh random values', () => {
    const store = new SessionStore(new ManualClock());
    const a = store.create(ACCOUNT);
    const b = store.create(ACCOUNT);
    assert.notEqual(a.cookie, b.cookie);
    assert.notEqual(a.session.csrfToken, b.session.csrfToken);
    assert.match(a.cookie, /^[A-Za-z0-9_-]{43}$/, '256 bits, URL-safe');
    assert.equal(store.get(a.cookie), a.session);
    assert.equal(store.get(`${a.cookie}x`), undefined);
    assert.equal(store.get(undefined), undefined);
    assert.equal(store.get(''), undefined);
    assert.equal(a.session.appId, 1);
    assert.ok(!JSON.stringify(a.session).includes(ACCOUNT.secretKey), 'the SecretKey itself is not kept');
  });

  test('idle expiry slides with use; the absolute expiry does not', () => {
    const clock = new ManualClock();
    const store = new SessionStore(clock, { idleMs: 1000, maxAgeMs: 5000 });
    const { cookie } = store.create(ACCOUNT);
    for (let i = 0; i < 4; i++) {
      clock.advance(900);
      assert.ok(store.get(cookie), `still alive after ${(i + 1) * 900} ms of steady use`);
    }
    clock.advance(1001);
    assert.equal(store.get(cookie), undefined, 'idle too long');
    const second = store.create(ACCOUNT);
    for (let i = 0; i < 5; i++) {
      clock.advance(999);
      assert.ok(store.get(second.cookie));
    }
    clock.advance(10);
    assert.equal(store.get(second.cookie), undefined, 'past maxAge even though used');
  });

  test('sign-out destroys; expired sessions are swept at the next sign-in', () => {
    const clock = new ManualClock();
    const store = new SessionStore(clock, { idleMs: 1000 });
    const a = store.create(ACCOUNT);
    store.destroy(a.cookie);
    assert.equal(store.get(a.cookie), undefined);
    store.destroy('unknown');
    store.create(ACCOUNT);
    clock.advance(2000);
    store.create(ACCOUNT);
    assert.equal(store.size, 1);
  });

  test('memory is bounded: in all, and per account (the oldest goes first)', () => {
    const store = new SessionStore(new ManualClock(), { maxSessions: 3, maxPerAccount: 2 });
    const a1 = store.create(ACCOUNT);
    const a2 = store.create(ACCOUNT);
    const a3 = store.create(ACCOUNT);
    assert.equal(store.get(a1.cookie), undefined, "the account's oldest");
    assert.ok(store.get(a2.cookie) && store.get(a3.cookie));
    const others = [2, 3, 4].map((appId) => store.create({ ...ACCOUNT, appId }));
    assert.equal(store.size, 3);
    assert.ok(others.every((o) => store.get(o.cookie)));
  });
});

describe('CSRF and origin checks', () => {
  test('the token must be present and equal', () => {
    const { session } = new SessionStore(new ManualClock()).create(ACCOUNT);
    assert.equal(csrfTokenValid(session, session.csrfToken), true);
    for (const bad of [null, undefined, '', `${session.csrfToken}x`, session.csrfToken.slice(1), 'x'.repeat(43)]) assert.equal(csrfTokenValid(session, bad), false, String(bad));
  });

  test('Origin must name this very host and scheme; a missing Origin is refused', () => {
    assert.equal(sameOrigin({ origin: 'http://127.0.0.1:8080', host: '127.0.0.1:8080' }, false), true);
    assert.equal(sameOrigin({ origin: 'https://cp.example', host: 'cp.example' }, true), true);
    for (const h of [
      { origin: 'http://evil.example', host: '127.0.0.1:8080' },
      { origin: 'http://127.0.0.1:8081', host: '127.0.0.1:8080' },
      { origin: 'https://127.0.0.1:8080', host: '127.0.0.1:8080' },
      { origin: 'null', host: '127.0.0.1:8080' },
      { host: '127.0.0.1:8080' },
      { origin: 'http://127.0.0.1:8080' },
    ]) {
      assert.equal(sameOrigin(h, false), false, JSON.stringify(h));
    }
    assert.equal(sameOrigin({ origin: 'http://cp.example', host: 'cp.example' }, true), false, 'plain http origin on a TLS socket');
  });

  test('cookies: read by exact name, first wins; set HttpOnly, SameSite=Strict, Secure only over TLS', () => {
    assert.equal(readCookie('a=1; edgepurge_session=abc; edgepurge_session=def', 'edgepurge_session'), 'abc');
    assert.equal(readCookie('xedgepurge_session=abc', 'edgepurge_session'), undefined);
    assert.equal(readCookie(undefined, 'edgepurge_session'), undefined);
    assert.equal(sessionCookie('s', 'v', false, 3_600_000), 's=v; Path=/console; HttpOnly; SameSite=Strict; Max-Age=3600');
    assert.equal(sessionCookie('s', 'v', true, 3_600_000), 's=v; Path=/console; HttpOnly; SameSite=Strict; Max-Age=3600; Secure');
    assert.equal(sessionCookie('s', undefined, false, 0), 's=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0');
  });
});

describe('SignInThrottle', () => {
  test('brakes a key after `burst` failures and lets one more through per refill period', () => {
    const clock = new ManualClock();
    const t = new SignInThrottle(clock, { burst: 3, refillMs: 10_000 });
    const keys = ['ip 203.0.113.7', 'id AKIDone'];
    for (let i = 0; i < 3; i++) {
      assert.equal(t.retryAfterMs(keys), 0);
      t.fail(keys);
    }
    assert.equal(t.retryAfterMs(keys), 10_000);
    assert.equal(t.retryAfterMs(['ip 198.51.100.1']), 0, 'other addresses are not braked…');
    assert.equal(t.retryAfterMs(['ip 198.51.100.1', 'id AKIDone']), 10_000, '…unless they try the same SecretId');
    clock.advance(4000);
    assert.equal(t.retryAfterMs(keys), 6000);
    clock.advance(6000);
    assert.equal(t.retryAfterMs(keys), 0);
    t.fail(keys);
    assert.ok(t.retryAfterMs(keys) > 0, 'one failure used the one refilled token');
  });

  test('memory stays bounded under a flood of distinct keys', () => {
    const t = new SignInThrottle(new ManualClock(), { burst: 2, maxKeys: 100 });
    for (let i = 0; i < 1000; i++) t.fail([`ip ${i}`]);
    t.fail(['id victim']);
    t.fail(['id victim']);
    assert.ok(t.retryAfterMs(['id victim']) > 0, 'the most recent failures are remembered');
    assert.equal(t.retryAfterMs(['ip 0']), 0, 'the oldest were forgotten');
  });
});
