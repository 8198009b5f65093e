// Legacy GetCdnRefreshLog (TENCENT-API §1.7, seed 000): URL and directory refreshes from every API,
// one record per job and host, newest first.
import { ApiError } from '../../shared/errors.ts';
import { MAX_TARGET_LENGTH } from '../../purge/targets.ts';
import type { JobRecord, TaskRecord, TaskType } from '../../purge/types.ts';
import type { JobQuery } from '../../store/task-store.ts';
import type { ActionContext, ActionHandler } from '../context.ts';
import { int, opt, readFields, str } from '../fields.ts';
import { formatCdnTime } from '../times.ts';
import { V2_FIELDS, withoutBlanks } from './legacy-fields.ts';
import { checkTaskInRange, requestedRange, searchedRange, withinHistory } from './legacy-history.ts';

/** Only refreshes show here (type 0 URL, 1 directory); prefetches are GetPushLogs'. */
const REFRESH_TYPES: readonly TaskType[] = ['purge_url', 'purge_prefix'];

/** Records per answer when `limit` is not given; `total` always counts every match. */
const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10_000;
/** Jobs read from the store per round while the records are counted. */
const SCAN_PAGE = 500;

/** §1.7 `status`: 1 success, 0 in progress, negative failed — over the record's tasks. */
export function legacyRefreshStatus(tasks: readonly TaskRecord[]): number {
  if (tasks.every((t) => t.status === 'success')) return 1;
  if (tasks.some((t) => t.status === 'processing')) return 0;
  return -1;
}

/** A job's tasks grouped by host, in submission order (URL and prefix tasks each name one host). */
function byHost(tasks: readonly TaskRecord[]): Map<string, TaskRecord[]> {
  const groups = new Map<string, TaskRecord[]>();
  for (const t of tasks) {
    const host = t.hosts[0] ?? '';
    const group = groups.get(host);
    if (group) group.push(t);
    else groups.set(host, [t]);
  }
  return groups;
}

function render(ctx: ActionContext, job: JobRecord, host: string, tasks: readonly TaskRecord[]) {
  return {
    // The row id of the record's first task: stable, and unique per record.
    id: tasks[0]!.id,
    app_id: ctx.account.appId,
    project_id: ctx.account.projectId,
    host,
    type: job.type === 'purge_url' ? 0 : 1,
    status: legacyRefreshStatus(tasks),
    url_list: tasks.map((t) => t.target),
    datetime: formatCdnTime(job.createdAt, ctx.timezone),
  };
}

/**
 * Rules (§1.7): the dates or taskId are required; with both, a task submitted outside the dates is
 * "The date is invalid" (9150). A taskId that names no refresh of this account (never existed, another
 * account's, a prefetch, or older than the 30 days kept) answers with no records, not an error: §1.7
 * documents no such error, and 21001 ("task_id does not exist", §1.4) sits among the preheat codes.
 * `offset`/`limit` are an EdgePurge extension over records; `total` counts every matching record.
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
    if (!job || !REFRESH_TYPES.includes(job.type) || !withinHistory(ctx, job)) return { logs: [], total: 0 };
    checkTaskInRange(ctx, job, requested);
  }
  const range = searchedRange(ctx, requested);
  if (range.from > range.to) return { logs: [], total: 0 };

  const host = p.host?.trim().toLowerCase();
  const url = p.url?.trim();
  const q: JobQuery = {
    appId,
    types: REFRESH_TYPES,
    from: range.from,
    to: range.to,
    offset: 0,
    limit: SCAN_PAGE,
    ...(p.taskId !== undefined ? { jobId: p.taskId } : {}),
    ...(host !== undefined ? { host } : {}),
    ...(url !== undefined ? { target: url } : {}),
  };
  const offset = p.offset ?? 0;
  const limit = p.limit ?? DEFAULT_LIMIT;
  const logs: Array<ReturnType<typeof render>> = [];
  let total = 0;
  // Records are (job, host) pairs, so the store's job count is not the record count: walk the matching
  // jobs (the filters above narrow them in the store) and count while keeping the requested page.
  for (let at = 0; ; at += SCAN_PAGE) {
    const page = await ctx.store.listJobs({ ...q, offset: at });
    for (const { job, tasks } of page.jobs) {
      for (const [h, group] of byHost(tasks)) {
        if (host !== undefined && h !== host) continue;
        if (url !== undefined && !group.some((t) => t.target === url)) continue;
        if (total >= offset && logs.length < limit) logs.push(render(ctx, job, h, group));
        total++;
      }
    }
    if (page.jobs.length < SCAN_PAGE || at + SCAN_PAGE >= page.total) break;
  }
  return { logs, total };
};
