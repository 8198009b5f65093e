// Legacy GetPushLogs (TENCENT-API §1.8): prefetch history from every API, one log per URL, newest first.
import { createHash } from 'node:crypto';
import { ApiError } from '../../shared/errors.ts';
import { MAX_TARGET_LENGTH } from '../../purge/targets.ts';
import type { TaskRecord, TaskStatus } from '../../purge/types.ts';
import type { TaskQuery } from '../../store/task-store.ts';
import type { ActionContext, ActionHandler } from '../context.ts';
import { int, opt, readFields, str } from '../fields.ts';
import { formatCdnTime } from '../times.ts';
import { stringList, V2_FIELDS, withoutBlanks } from './legacy-fields.ts';
import { checkTaskInRange, requestedRange, searchedRange, withinHistory } from './legacy-history.ts';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/**
 * `status.n` filter → the task statuses it covers. The docs list `init` (queued), `process` (one doc
 * writes `inprocess`) and `done`; the answers also carry `fail`. EdgePurge has no queue before an edge
 * applies a task, so `init` is what is still in progress.
 */
function statusFilter(s: string): TaskStatus[] {
  switch (s) {
    case 'init':
    case 'process':
    case 'inprocess':
      return ['processing'];
    case 'done':
      return ['success'];
    case 'fail':
      return ['failed', 'timeout', 'canceled', 'invalid'];
    default:
      throw new ApiError(V2_FIELDS.invalid, `status must be init, process, done or fail (got ${JSON.stringify(s.slice(0, 20))})`);
  }
}

/** §1.8: `status` is `process`, `done` or `fail`. */
function legacyPushStatus(s: TaskStatus): 'process' | 'done' | 'fail' {
  return s === 'processing' ? 'process' : s === 'success' ? 'done' : 'fail';
}

/**
 * The log's public id: a number below 2^53 hashed from what the log already shows its tenant (job id,
 * host, URL), so it is stable and tells nothing about row counts or how much other tenants purge, as a
 * row id or log sequence would, even by brute force (hardening issue). The same URL pushed twice in one
 * job gives two identical logs with one id.
 */
export function pushLogId(t: Pick<TaskRecord, 'jobId' | 'hosts' | 'target'>): number {
  return Number(createHash('sha256').update(`${t.jobId}\n${t.hosts[0] ?? ''}\n${t.target}`).digest().readBigUInt64BE(0) >> 11n);
}

function render(ctx: ActionContext, t: TaskRecord) {
  const status = legacyPushStatus(t.status);
  return {
    log_id: pushLogId(t),
    task_id: t.jobId,
    host: t.hosts[0] ?? '',
    datetime: formatCdnTime(t.createdAt, ctx.timezone),
    status,
    url: t.target,
    // Why it ended: empty while running, "success", or the failure (an origin answering 4xx/5xx is `invalid`).
    result: status === 'process' ? '' : status === 'done' ? 'success' : (t.failMessage ?? t.failType ?? t.status),
    progress: status === 'process' ? 0 : 100,
  };
}

/**
 * Filters (§1.8): startDate/endDate (default: the 30 days kept), taskId, hosts.n, status.n, keyword
 * (substring of the URL), offset/limit (default 100, at most 1000); `url` (exact URL) is what Tencent's
 * QcloudCdnTools_V2.py sends. A taskId that names no prefetch of this account within the 30 days is
 * ResourceNotFound.CdnTaskNotExists (21001, "the queried task_id does not exist", §1.4 — a preheat
 * code); with dates, a task submitted outside them is "The date is invalid" (9150).
 */
export const getPushLogs: ActionHandler = async (ctx, params) => {
  const p = readFields(
    withoutBlanks(params),
    {
      startDate: opt(str({ max: 64 })),
      endDate: opt(str({ max: 64 })),
      taskId: opt(str({ max: 64 })),
      hosts: opt(stringList({ max: 100, itemMax: 253 })),
      status: opt(stringList({ max: 4, itemMax: 16 })),
      keyword: opt(str({ max: MAX_TARGET_LENGTH })),
      url: opt(str({ max: MAX_TARGET_LENGTH })),
      offset: opt(int({ min: 0 })),
      limit: opt(int({ min: 1, max: MAX_LIMIT })),
    },
    V2_FIELDS,
  );
  const requested = requestedRange(ctx, p.startDate, p.endDate);
  const appId = ctx.account.appId;
  if (p.taskId !== undefined) {
    const job = await ctx.store.getJob(appId, p.taskId);
    if (!job || job.type !== 'prefetch_url' || !withinHistory(ctx, job)) {
      throw new ApiError('ResourceNotFound.CdnTaskNotExists', `task_id ${p.taskId} does not exist`);
    }
    checkTaskInRange(ctx, job, requested);
  }
  const range = searchedRange(ctx, requested);
  const q: { -readonly [K in keyof TaskQuery]: TaskQuery[K] } = {
    appId,
    types: ['prefetch_url'],
    from: range.from,
    to: range.to,
    offset: p.offset ?? 0,
    limit: p.limit ?? DEFAULT_LIMIT,
  };
  if (p.taskId !== undefined) q.jobId = p.taskId;
  if (p.hosts !== undefined) q.hosts = p.hosts.map((h) => h.trim().toLowerCase());
  if (p.status !== undefined) q.statuses = [...new Set(p.status.flatMap(statusFilter))];
  if (p.keyword !== undefined) q.targetContains = p.keyword;
  if (p.url !== undefined) q.target = p.url.trim();
  const { total, tasks } = await ctx.store.listTasks(q);
  return { logs: tasks.map((t) => render(ctx, t)), total };
};
