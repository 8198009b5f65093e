// What GetCdnRefreshLog and GetPushLogs share (TENCENT-API §1.7, §1.8): legacy date parsing, the
// 30-day history window, and the taskId-versus-date-range check.
import { ApiError } from '../../shared/errors.ts';
import type { JobRecord } from '../../purge/types.ts';
import type { ActionContext } from '../context.ts';
import { formatCdnTime, parseCdnTime } from '../times.ts';

const DAY_MS = 86_400_000;
/** §1.7, §1.8: "Records are kept 30 days". */
export const LEGACY_HISTORY_MS = 30 * DAY_MS;

const INVALID_DATE = 'InvalidParameter.CdnStatInvalidDate' as const;
const DATETIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
const DATE_ONLY = /^(\d{4})-?(\d{2})-?(\d{2})$/;

/**
 * A legacy date, read in the configured zone. Accepted: `YYYY-MM-DD HH:mm:ss` (§1.7, precise to the
 * second, so an end bound covers its whole second), and the day forms older clients send —
 * `YYYY-MM-DD` (Tencent's QcloudCdnTools_V2.py) and `YYYYMMDD` (the oldest doc) — as the day's first or
 * last millisecond. Anything else is "The date is invalid" (9150).
 */
export function parseLegacyDate(value: string, tz: string, name: string, edge: 'start' | 'end'): number {
  const v = value.trim();
  try {
    if (DATETIME.test(v)) return parseCdnTime(v, tz, name, INVALID_DATE) + (edge === 'end' ? 999 : 0);
    const day = DATE_ONLY.exec(v);
    if (day) return parseCdnTime(`${day[1]}-${day[2]}-${day[3]} 00:00:00`, tz, name, INVALID_DATE) + (edge === 'end' ? DAY_MS - 1 : 0);
  } catch {
    // Impossible calendar dates (2023-02-30, 25:00:00) fall through to the one message below.
  }
  throw new ApiError(INVALID_DATE, `The date is invalid: ${name} must look like 2017-02-09 00:00:00 (got ${JSON.stringify(v.slice(0, 40))})`);
}

export interface LegacyRange {
  /** Inclusive bounds on createdAt, ms. */
  readonly from: number;
  readonly to: number;
}

/**
 * The range the caller asked for, or undefined when neither date was given. One missing bound is open:
 * no startDate reaches back to the oldest kept record, no endDate reaches now.
 */
export function requestedRange(ctx: ActionContext, startDate: string | undefined, endDate: string | undefined): LegacyRange | undefined {
  if (startDate === undefined && endDate === undefined) return undefined;
  const now = ctx.clock.now();
  const from = startDate !== undefined ? parseLegacyDate(startDate, ctx.timezone, 'startDate', 'start') : now - LEGACY_HISTORY_MS;
  const to = endDate !== undefined ? parseLegacyDate(endDate, ctx.timezone, 'endDate', 'end') : now;
  if (to < from) throw new ApiError(INVALID_DATE, 'The date is invalid: endDate is before startDate');
  return { from, to };
}

/**
 * The range actually searched: the request's, clamped to the 30 days of kept history (an older startDate
 * is clamped, not refused, so "the last 60 days" answers with what exists) and to now, so records
 * committed while a long answer is assembled cannot shift its pages.
 */
export function searchedRange(ctx: ActionContext, requested: LegacyRange | undefined): LegacyRange {
  const now = ctx.clock.now();
  return { from: Math.max(requested?.from ?? -Infinity, now - LEGACY_HISTORY_MS), to: Math.min(requested?.to ?? now, now) };
}

/** §1.7: "If startDate&endDate and taskId are both filled in, when the taskId is not submitted within this time range, 'The date is invalid'". */
export function checkTaskInRange(ctx: ActionContext, job: JobRecord, range: LegacyRange | undefined): void {
  if (range === undefined || (job.createdAt >= range.from && job.createdAt <= range.to)) return;
  throw new ApiError(
    INVALID_DATE,
    `The date is invalid: task ${job.jobId} was submitted at ${formatCdnTime(job.createdAt, ctx.timezone)}, ` +
      `outside ${formatCdnTime(range.from, ctx.timezone)} – ${formatCdnTime(range.to, ctx.timezone)}`,
  );
}

/** Whether a job is still inside the 30 days the legacy history shows. */
export const withinHistory = (ctx: ActionContext, job: JobRecord): boolean => job.createdAt >= ctx.clock.now() - LEGACY_HISTORY_MS;
