// Legacy GetCdnRefreshLog (TENCENT-API §1.7, seed 000): URL and directory refreshes from every API,
// one record per job and host, newest first.
import { ApiError } from '../../shared/errors.ts';
import { MAX_TARGET_LENGTH } from '../../purge/targets.ts';
import type { TaskRecord, TaskType } from '../../purge/types.ts';
import type { RefreshRecord, RefreshRecordQuery, RefreshType } from '../../store/task-store.ts';
import type { ActionContext, ActionHandler } from '../context.ts';
import { int, opt, readFields, str } from '../fields.ts';
import { formatCdnTime } from '../times.ts';
import { V2_FIELDS, withoutBlanks } from './legacy-fields.ts';
import { checkTaskInRange, requestedRange, searchedRange, withinHistory } from './legacy-history.ts';

/** Only refreshes show here (type 0 URL, 1 directory; the store keeps records of these alone); prefetches are GetPushLogs'. */
const REFRESH_TYPES: readonly RefreshType[] = ['purge_url', 'purge_prefix'];

/** Records per answer when `limit` is not given; `total` always counts every match. */
const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10_000;
/**
 * URLs per answer: a page ends before the record whose job would take it past this many (it always
 * holds one record), so the 10,000 records `limit` allows are pages of 1-URL records at most 2,000.
 * Every URL of an answer is received, rendered and serialised on the event loop; 2,000 keeps that to
 * a few milliseconds, where 10,000 records of big jobs could carry the 30 days' 300,000 URLs (more
 * with raised quotas) and hold every other request and the edge leases for seconds.
 */
const MAX_URLS = 2_000;

/** §1.7 `status`: 1 success, 0 in progress, negative failed — over the record's tasks. */
export function legacyRefreshStatus(tasks: readonly TaskRecord[]): number {
  if (tasks.every((t) => t.status === 'success')) return 1;
  if (tasks.some((t) => t.status === 'processing')) return 0;
  return -1;
}

function render(ctx: ActionContext, r: RefreshRecord) {
  return {
    // The record's public id: the job id (task_id) for the job's first host, a random number for its
    // others (see RefreshRecord.id): unique per record, stable, and telling nothing about row counts.
    id: r.id,
    app_id: ctx.account.appId,
    project_id: ctx.account.projectId,
    host: r.host,
    type: r.job.type === 'purge_url' ? 0 : 1,
    status: legacyRefreshStatus(r.tasks),
    url_list: r.tasks.map((t) => t.target),
    datetime: formatCdnTime(r.job.createdAt, ctx.timezone),
  };
}

/**
 * Rules (§1.7): the dates or taskId are required; with both, a task submitted outside the dates is
 * "The date is invalid" (9150). A taskId that names no refresh of this account (never existed, another
 * account's, a prefetch, or older than the 30 days kept) answers with no records, not an error: §1.7
 * documents no such error, and 21001 ("task_id does not exist", §1.4) sits among the preheat codes.
 * `offset`/`limit` are an EdgePurge extension over records; `total` counts every matching record. A page
 * holds at most `limit` records and ends early rather than exceed MAX_URLS, so the next page starts
 * at offset + logs.length.
 */
export const getCdnRefreshLog: ActionHandler = async (ctx, params) => {
  const p = readFields(
    withoutBlanks(params),
    {
      startDate: opt(str({ max: 64 })),
      endDate: opt(str({ max: 64 })),
      taskId: opt(str({ max: 64 })),
      url: opt(str({ max: MAX_TARGET_LENGTH })),
      host: opt(str({ max: 253 })),
      offset: opt(int({ min: 0 })),
      limit: opt(int({ min: 1, max: MAX_LIMIT })),
    },
    V2_FIELDS,
  );
  const requested = requestedRange(ctx, p.startDate, p.endDate);
  if (requested === undefined && p.taskId === undefined) {
    throw new ApiError('MissingParameter', 'startDate and endDate, or taskId, are required');
  }
  const appId = ctx.account.appId;
  if (p.taskId !== undefined) {
    const job = await ctx.store.getJob(appId, p.taskId);
    if (!job || !(REFRESH_TYPES as readonly TaskType[]).includes(job.type) || !withinHistory(ctx, job)) return { logs: [], total: 0 };
    checkTaskInRange(ctx, job, requested);
  }
  const range = searchedRange(ctx, requested);
  if (range.from > range.to) return { logs: [], total: 0 };

  const host = p.host?.trim().toLowerCase();
  const url = p.url?.trim();
  // One store query: records are (job, host) rows in the store, counted and paged in one index range.
  const q: RefreshRecordQuery = {
    appId,
    from: range.from,
    to: range.to,
    offset: p.offset ?? 0,
    limit: p.limit ?? DEFAULT_LIMIT,
    maxTasks: MAX_URLS,
    ...(p.taskId !== undefined ? { jobId: p.taskId } : {}),
    ...(host !== undefined ? { host } : {}),
    ...(url !== undefined ? { target: url } : {}),
  };
  const { total, records } = await ctx.store.listRefreshRecords(q);
  return { logs: records.map((r) => render(ctx, r)), total };
};
