// Quota arithmetic: Tencent's documented defaults, per-account overrides, units per request, and quota
// days cut at 00:00 in the configured zone (+08:00 by default).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { available, DEFAULT_QUOTAS, offsetMinutes, quotaDay, quotaFor, units } from '../../src/purge/quotas.ts';
import { TASK_TYPES } from '../../src/purge/types.ts';

describe('defaults and overrides', () => {
  test("Tencent's documented defaults (TENCENT-API §1.5, §1.6, §3.1, §3.5, §4.5)", () => {
    assert.deepEqual(DEFAULT_QUOTAS, {
      purge_url: { batch: 1000, daily: 10000 },
      purge_prefix: { batch: 20, daily: 100 },
      purge_host: { batch: 2000, daily: 10000 },
      purge_all: { batch: 2000, daily: 10000 },
      purge_cache_tag: { batch: 2000, daily: 10000 },
      prefetch_url: { batch: 500, daily: 1000 },
    });
    assert.ok(Object.isFrozen(DEFAULT_QUOTAS));
    assert.deepEqual(Object.keys(DEFAULT_QUOTAS).sort(), [...TASK_TYPES].sort());
  });

  test('an account override replaces the default for its type only', () => {
    const overrides = { purge_url: { batch: 3, daily: 5 } };
    assert.deepEqual(quotaFor(overrides, 'purge_url'), { batch: 3, daily: 5 });
    assert.deepEqual(quotaFor(overrides, 'purge_prefix'), DEFAULT_QUOTAS.purge_prefix);
    assert.deepEqual(quotaFor({}, 'prefetch_url'), DEFAULT_QUOTAS.prefetch_url);
  });
});

describe('units and availability', () => {
  test('one unit per target; purge_all counts once per request', () => {
    assert.equal(units('purge_url', 7), 7);
    assert.equal(units('purge_prefix', 1), 1);
    assert.equal(units('purge_host', 2), 2);
    assert.equal(units('purge_cache_tag', 3), 3);
    assert.equal(units('prefetch_url', 500), 500);
    assert.equal(units('purge_all', 1), 1);
    assert.equal(units('purge_all', 4), 1);
  });

  test('available = daily - used, never negative (a lowered limit may sit below what was used)', () => {
    assert.equal(available({ batch: 10, daily: 100 }, 0), 100);
    assert.equal(available({ batch: 10, daily: 100 }, 99), 1);
    assert.equal(available({ batch: 10, daily: 100 }, 100), 0);
    assert.equal(available({ batch: 10, daily: 100 }, 250), 0);
  });
});

describe('quota days', () => {
  test('offsets parse to minutes east of UTC', () => {
    assert.equal(offsetMinutes('+08:00'), 480);
    assert.equal(offsetMinutes('-05:30'), -330);
    assert.equal(offsetMinutes('+00:00'), 0);
    assert.throws(() => offsetMinutes('8'));
    assert.throws(() => offsetMinutes('+8:00'));
  });

  test('the +08:00 day starts at 16:00 UTC of the previous UTC day', () => {
    const tz = '+08:00';
    assert.equal(quotaDay(Date.UTC(2026, 2, 10, 15, 59, 59, 999), tz), '2026-03-10');
    assert.equal(quotaDay(Date.UTC(2026, 2, 10, 16, 0, 0, 0), tz), '2026-03-11');
    // UTC midnight is 08:00 in +08:00: no boundary there.
    assert.equal(quotaDay(Date.UTC(2026, 2, 10, 23, 59, 59, 999), tz), '2026-03-11');
    assert.equal(quotaDay(Date.UTC(2026, 2, 11, 0, 0, 0, 0), tz), '2026-03-11');
  });

  test('the day worked out once and reused gives what the calendar gives, whatever the order of times and zones asked', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: Date.UTC(1969, 0, 1), max: Date.UTC(2100, 0, 1) }), fc.constantFrom('+08:00', '+00:00', '-05:00', '+05:30', '-12:00', '+14:00')), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: -2, max: 2 }),
        (asks, nudge) => {
          for (const [at, tz] of asks) {
            // Around the zone's own midnight too (±2 ms), where a reused day is most likely to be wrong.
            const midnight = Math.floor((at + offsetMinutes(tz) * 60_000) / 86_400_000) * 86_400_000 - offsetMinutes(tz) * 60_000;
            for (const ms of [at, midnight + nudge, midnight - 1]) {
              assert.equal(quotaDay(ms, tz), new Date(ms + offsetMinutes(tz) * 60_000).toISOString().slice(0, 10), `${ms} ${tz}`);
            }
          }
        },
      ),
    );
  });

  test('month, year and leap-day boundaries', () => {
    const tz = '+08:00';
    assert.equal(quotaDay(Date.UTC(2025, 11, 31, 15, 59, 59, 999), tz), '2025-12-31');
    assert.equal(quotaDay(Date.UTC(2025, 11, 31, 16, 0, 0), tz), '2026-01-01');
    assert.equal(quotaDay(Date.UTC(2028, 1, 28, 16, 0, 0), tz), '2028-02-29');
    assert.equal(quotaDay(Date.UTC(2028, 1, 29, 16, 0, 0), tz), '2028-03-01');
  });

  test('other zones cut at their own midnight', () => {
    assert.equal(quotaDay(Date.UTC(2026, 2, 10, 23, 59, 59, 999), '+00:00'), '2026-03-10');
    assert.equal(quotaDay(Date.UTC(2026, 2, 11, 0, 0, 0), '+00:00'), '2026-03-11');
    assert.equal(quotaDay(Date.UTC(2026, 2, 11, 4, 59, 59, 999), '-05:00'), '2026-03-10');
    assert.equal(quotaDay(Date.UTC(2026, 2, 11, 5, 0, 0), '-05:00'), '2026-03-11');
    assert.equal(quotaDay(Date.UTC(2026, 2, 10, 18, 29, 59, 999), '+05:30'), '2026-03-10');
    assert.equal(quotaDay(Date.UTC(2026, 2, 10, 18, 30, 0), '+05:30'), '2026-03-11');
  });

  test('every instant of one +08:00 day maps to that day', () => {
    const start = Date.UTC(2026, 5, 30, 16, 0, 0);
    for (let ms = start; ms < start + 86_400_000; ms += 3_600_000 - 1) assert.equal(quotaDay(ms, '+08:00'), '2026-07-01');
    assert.equal(quotaDay(start + 86_400_000, '+08:00'), '2026-07-02');
  });
});
