// The per-account Nonce cache shared by legacy v2 and API 3.0 v1 requests (src/protocols/nonce-cache.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NonceCache, nonceCapacity, reserveNonce, UNTHROTTLED_NONCE_CAPACITY, type NonceClaim } from '../../src/protocols/nonce-cache.ts';
import { ApiError, type ErrorCode } from '../../src/shared/errors.ts';

/** A claim whose stand-in signature, like a real one, differs whenever SecretId, Timestamp or Nonce do. */
function claim(nonce: string, timestamp = 100, over: Partial<NonceClaim> = {}): NonceClaim {
  const secretId = over.secretId ?? 'AKIDa';
  return { secretId, timestamp, nonce, signature: `sig-${secretId}-${timestamp}-${nonce}`, ...over };
}

/** check, then record when fresh: what the control plane does around the rate limit. */
function admit(c: NonceCache, account: number, x: NonceClaim, capacity: number, nowMs: number): string {
  const outcome = c.check(account, x, capacity, nowMs);
  if (outcome === 'fresh') c.record(account, x, nowMs);
  return outcome;
}

const apiError = (code: ErrorCode) => (e: unknown): boolean => {
  assert.ok(e instanceof ApiError);
  assert.equal(e.code, code, e.message);
  return true;
};

describe('NonceCache', () => {
  test('fresh, replayed, full; check alone records nothing', () => {
    const c = new NonceCache({ windowSeconds: 10 });
    assert.equal(c.check(1, claim('1'), 2, 100_000), 'fresh');
    assert.equal(c.check(1, claim('1'), 2, 100_000), 'fresh', 'a check that is not followed by record leaves the Nonce unused');
    assert.equal(admit(c, 1, claim('1'), 2, 100_000), 'fresh');
    assert.equal(admit(c, 1, claim('1'), 2, 100_000), 'replayed');
    assert.equal(admit(c, 1, claim('2'), 2, 100_000), 'fresh');
    assert.equal(admit(c, 1, claim('3'), 2, 100_000), 'full');
    assert.equal(c.size, 2);
  });

  test("one account's full share refuses only that account", () => {
    const c = new NonceCache({ windowSeconds: 7200 });
    for (let i = 0; i < 50; i++) assert.equal(admit(c, 1, claim(String(i)), 50, 100_000), 'fresh');
    assert.equal(admit(c, 1, claim('new'), 50, 100_000), 'full');
    for (let i = 0; i < 50; i++) assert.equal(admit(c, 2, claim(String(i), 100, { secretId: 'AKIDb' }), 50, 100_000), 'fresh');
    assert.equal(c.sizeOf(1), 50);
    assert.equal(c.sizeOf(2), 50);
    // A replay is still a replay when its account's share is full.
    assert.equal(c.check(1, claim('0'), 50, 100_000), 'replayed');
  });

  test('the same Nonce and Timestamp with another Signature is another request (16-bit nonces collide)', () => {
    const c = new NonceCache({ windowSeconds: 10 });
    assert.equal(admit(c, 1, claim('7', 100, { signature: 'A' }), 10, 100_000), 'fresh');
    assert.equal(admit(c, 1, claim('7', 100, { signature: 'B' }), 10, 100_000), 'fresh');
    assert.equal(admit(c, 1, claim('7', 100, { signature: 'A' }), 10, 100_000), 'replayed');
  });

  test('an entry lives exactly as long as its timestamp passes the window, and frees its account share', () => {
    const c = new NonceCache({ windowSeconds: 10 });
    admit(c, 1, claim('1'), 1, 95_000);
    assert.equal(admit(c, 1, claim('1'), 1, 110_999), 'replayed');
    assert.equal(admit(c, 1, claim('2', 101), 1, 110_999), 'full');
    assert.equal(admit(c, 1, claim('2', 101), 1, 111_000), 'fresh', 'the first entry expired when second 111 began');
    assert.equal(c.size, 1);
    assert.equal(c.sizeOf(1), 1);
  });

  test('evicts by expiry whatever the insertion order (heap), across accounts', () => {
    const c = new NonceCache({ windowSeconds: 100 });
    const stamps = Array.from({ length: 2000 }, (_, i) => 1000 + ((i * 7919) % 200));
    stamps.forEach((ts, i) => assert.equal(admit(c, i % 3, claim(String(i), ts), 10_000, 1_000_000), 'fresh'));
    for (const now of [1101, 1150, 1200, 1250, 1301]) {
      c.check(9, claim('probe'), 1, now * 1000);
      const live = stamps.filter((ts) => (ts + 100 + 1) * 1000 > now * 1000);
      assert.equal(c.size, live.length, `at ${now}`);
      assert.equal(c.sizeOf(0) + c.sizeOf(1) + c.sizeOf(2), live.length, `per-account counts at ${now}`);
    }
  });
});

describe('nonceCapacity', () => {
  test("an account's share is what its rate limit admits on every action while one entry lives", () => {
    // Legacy v2 defaults: 5 actions × (burst 40 + 20/s × 7201 s).
    assert.equal(nonceCapacity({ perSecond: 20, burst: 40 }, 5, 7200), 5 * (40 + 20 * 7201));
    assert.equal(nonceCapacity({ perSecond: 0.5, burst: 1 }, 2, 10), 2 * (1 + 6));
    assert.equal(nonceCapacity(false, 5, 7200), UNTHROTTLED_NONCE_CAPACITY);
  });

  test('a client with a correct clock at its full rate on every action never meets the bound', () => {
    const rl = { perSecond: 2, burst: 3 };
    const window = 30;
    const buckets = 2;
    const c = new NonceCache({ windowSeconds: window });
    const capacity = nonceCapacity(rl, buckets, window);
    let n = 0;
    // The burst at once, then perSecond each second, on each action, for three windows.
    for (let b = 0; b < buckets; b++) for (let i = 0; i < rl.burst; i++) assert.equal(admit(c, 1, claim(String(n++), 1000), capacity, 1_000_000), 'fresh');
    for (let s = 1; s <= 3 * window; s++) {
      for (let b = 0; b < buckets * rl.perSecond; b++) {
        assert.equal(admit(c, 1, claim(String(n++), 1000 + s), capacity, (1000 + s) * 1000), 'fresh', `second ${s}`);
      }
    }
  });
});

describe('reserveNonce', () => {
  test('a replay → AuthFailure.ReplayAttack; a full share → RequestLimitExceeded; else the returned function records', () => {
    const c = new NonceCache({ windowSeconds: 10 });
    const record = reserveNonce(c, 1, claim('1'), 1, 100_000);
    assert.equal(c.size, 0, 'nothing is recorded before the caller says so');
    record();
    assert.throws(() => reserveNonce(c, 1, claim('1'), 1, 100_000), apiError('AuthFailure.ReplayAttack'));
    assert.throws(() => reserveNonce(c, 1, claim('2'), 1, 100_000), apiError('RequestLimitExceeded'));
    assert.equal(typeof reserveNonce(c, 2, claim('2', 100, { secretId: 'AKIDb' }), 1, 100_000), 'function');
  });
});
