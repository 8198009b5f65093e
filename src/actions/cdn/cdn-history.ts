// CDN-shaped history (TENCENT-API §3.3, §3.5): statuses done/process/fail, `YYYY-MM-DD HH:mm:ss`
// times in the configured zone, one row per URL or directory.
import { ApiError } from '../../shared/errors.ts';
import type { TaskStatus, TaskType } from '../../purge/types.ts';
import type { TaskQuery } from '../../store/task-store.ts';
import type { ActionContext } from '../context.ts';
import { endOfSecond, parseCdnTime } from '../times.ts';

const E = 'InvalidParameter.CdnParamError' as const;

/** EdgeOne status → CDN status. `invalid` exists for prefetch only (origin answered 4xx/5xx). */
export function cdnStatus(s: TaskStatus): string {
  switch (s) {
    case 'processing':
      return 'process';
    case 'success':
      return 'done';
    case 'invalid':
      return 'invalid';
    default:
      return 'fail';
  }
}

/** CDN status filter → the EdgeOne statuses it covers. */
export function fromCdnStatus(s: string): TaskStatus[] {
  switch (s) {
    case 'process':
      return ['processing'];
    case 'done':
      return ['success'];
    case 'fail':
      return ['failed', 'timeout', 'canceled'];
    case 'invalid':
      return ['invalid'];
    default:
      throw new ApiError(E, `Status must be one of fail, done, process${s === '' ? '' : ` (got "${s}")`}`);
  }
}

export interface CdnQueryInput {
  readonly StartTime?: string | undefined;
  readonly EndTime?: string | undefined;
  readonly TaskId?: string | undefined;
  readonly Keyword?: string | undefined;
  readonly Status?: string | undefined;
  readonly Offset?: number | undefined;
  readonly Limit?: number | undefined;
}

/** The store query for a CDN history call: TaskId or StartTime is required (§3.3). */
export function cdnQuery(ctx: ActionContext, p: CdnQueryInput, types: readonly TaskType[], statuses: readonly string[]): TaskQuery {
  const q: { -readonly [K in keyof TaskQuery]: TaskQuery[K] } = {
    appId: ctx.account.appId,
    types,
    offset: p.Offset ?? 0,
    limit: p.Limit ?? 20,
  };
  if (p.TaskId !== undefined && p.TaskId !== '') q.jobId = p.TaskId;
  if (p.StartTime !== undefined) {
    q.from = parseCdnTime(p.StartTime, ctx.timezone, 'StartTime', 'InvalidParameter.CdnStatInvalidDate');
    q.to = p.EndTime !== undefined ? endOfSecond(parseCdnTime(p.EndTime, ctx.timezone, 'EndTime', 'InvalidParameter.CdnStatInvalidDate'), p.EndTime) : ctx.clock.now();
    if (q.to < q.from) throw new ApiError('InvalidParameter.CdnStatInvalidDate', 'EndTime is before StartTime');
  } else if (p.EndTime !== undefined) {
    throw new ApiError('MissingParameter', 'EndTime needs StartTime');
  } else if (q.jobId === undefined) {
    throw new ApiError('MissingParameter', 'TaskId or StartTime is required');
  }
  if (p.Keyword !== undefined && p.Keyword !== '') {
    // A keyword is a domain, or a full URL starting with http(s):// (§3.3).
    if (/^https?:\/\//i.test(p.Keyword)) q.target = p.Keyword;
    else q.hosts = [p.Keyword.toLowerCase()];
  }
  if (p.Status !== undefined && p.Status !== '') {
    if (!statuses.includes(p.Status)) throw new ApiError(E, `Status must be one of ${statuses.join(', ')}`);
    q.statuses = fromCdnStatus(p.Status);
  }
  return q;
}
