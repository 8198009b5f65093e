// Quota arithmetic: per-account, per-type batch and daily limits, days cut at 00:00 in the configured zone.
import type { TaskType } from './types.ts';

export interface QuotaLimit {
  readonly batch: number;
  readonly daily: number;
}

/**
 * Tencent's documented defaults: URLs 1,000 per request and 10,000 a day (TENCENT-API §1.5, §3.1);
 * directories 20 per request and 100 a day (seed 002, §1.6); prefetch 500 per request and 1,000 a
 * day (§3.5); host, all and tag purges as EdgeOne's published quota example (§4.5: 2,000 / 10,000).
 */
export const DEFAULT_QUOTAS: Readonly<Record<TaskType, QuotaLimit>> = Object.freeze({
  purge_url: { batch: 1000, daily: 10000 },
  purge_prefix: { batch: 20, daily: 100 },
  purge_host: { batch: 2000, daily: 10000 },
  purge_all: { batch: 2000, daily: 10000 },
  purge_cache_tag: { batch: 2000, daily: 10000 },
  prefetch_url: { batch: 500, daily: 1000 },
});

export function quotaFor(overrides: Partial<Record<TaskType, QuotaLimit>>, type: TaskType): QuotaLimit {
  return overrides[type] ?? DEFAULT_QUOTAS[type];
}

/** Parses "+08:00" / "-05:30" into minutes east of UTC. */
export function offsetMinutes(tz: string): number {
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(tz);
  if (!m) throw new Error(`bad UTC offset "${tz}"`);
  const mins = Number(m[2]) * 60 + Number(m[3]);
  return m[1] === '-' ? -mins : mins;
}

/** The quota day (`YYYY-MM-DD`) that `ms` falls in, in the zone `tz`. */
export function quotaDay(ms: number, tz: string): string {
  // Every request of a day asks for the same day: worked out once per day and zone, not per request.
  const last = lastQuotaDay;
  if (ms >= last.from && ms < last.to && tz === last.tz) return last.day;
  const offsetMs = offsetMinutes(tz) * 60_000;
  const start = Math.floor((ms + offsetMs) / DAY_MS) * DAY_MS;
  const day = new Date(start).toISOString().slice(0, 10);
  lastQuotaDay = { tz, from: start - offsetMs, to: start - offsetMs + DAY_MS, day };
  return day;
}
const DAY_MS = 86_400_000;
/** The last day quotaDay worked out: [from, to) in UTC ms is `day` in zone `tz`. */
let lastQuotaDay = { tz: '', from: 0, to: 0, day: '' };

/** Units left today: never negative (a lowered limit may sit below what was already used). */
export function available(limit: QuotaLimit, used: number): number {
  return Math.max(0, limit.daily - used);
}

/** How many quota units a request of `count` targets consumes: purge_all counts once per request. */
export function units(type: TaskType, count: number): number {
  return type === 'purge_all' ? 1 : count;
}
