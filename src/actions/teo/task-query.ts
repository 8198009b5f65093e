// The query half shared by EdgeOne DescribePurgeTasks and DescribePrefetchTasks (TENCENT-API §4.2, §4.4).
import { ApiError } from '../../shared/errors.ts';
import { PURGE_TYPES, TASK_STATUSES, type TaskRecord, type TaskStatus, type TaskType } from '../../purge/types.ts';
import type { TaskQuery } from '../../store/task-store.ts';
import type { ActionContext } from '../context.ts';
import { array, bool, int, object, opt, readFields, req, str, TEO_FIELDS } from '../fields.ts';
import { endOfSecond, formatIso, parseIso } from '../times.ts';

const SEVEN_DAYS = 7 * 86_400_000;
const E = 'InvalidParameter.ParameterError' as const;

const filter = object({ Name: req(str({ max: 64 })), Values: req(array(str({ max: 4096 }), { max: 20 })), Fuzzy: opt(bool()) });

export interface TaskKind {
  readonly types: readonly TaskType[];
  readonly statuses: readonly TaskStatus[];
  /** Prefetch history has no `type` filter and no fuzzy target search (§4.4). */
  readonly prefetch: boolean;
}

export const PURGE_KIND: TaskKind = {
  types: PURGE_TYPES,
  statuses: ['processing', 'success', 'failed', 'timeout', 'canceled'],
  prefetch: false,
};
export const PREFETCH_KIND: TaskKind = { types: ['prefetch_url'], statuses: TASK_STATUSES, prefetch: true };

export async function describeTasks(ctx: ActionContext, params: Record<string, unknown>, kind: TaskKind) {
  const p = readFields(
    params,
    {
      ZoneId: opt(str({ max: 64 })),
      StartTime: opt(str()),
      EndTime: opt(str()),
      Offset: opt(int({ min: 0 })),
      Limit: opt(int({ min: 1, max: 1000 })),
      Filters: opt(array(filter, { max: 20 })),
    },
    TEO_FIELDS,
  );
  const q: { -readonly [K in keyof TaskQuery]: TaskQuery[K] } = {
    appId: ctx.account.appId,
    offset: p.Offset ?? 0,
    limit: p.Limit ?? 20,
    types: kind.types,
  };
  let hosts: string[] | undefined;
  for (const f of p.Filters ?? []) {
    const one = () => {
      if (f.Values.length !== 1) throw new ApiError(E, `Filter ${f.Name} takes exactly one value`);
      return f.Values[0]!;
    };
    if (f.Fuzzy && f.Name !== 'target') throw new ApiError(E, `Filter ${f.Name} does not support fuzzy matching`);
    switch (f.Name) {
      case 'job-id':
        q.jobId = one();
        break;
      case 'target':
        if (f.Fuzzy && !kind.prefetch) q.targetContains = one();
        else if (f.Fuzzy) throw new ApiError(E, 'Filter target does not support fuzzy matching for prefetch tasks');
        else q.target = one();
        break;
      case 'domains':
        hosts = f.Values.map((v) => v.toLowerCase());
        break;
      case 'statuses':
        for (const s of f.Values) {
          if (!(kind.statuses as readonly string[]).includes(s)) throw new ApiError(E, `Unknown status "${s}"; use ${kind.statuses.join(', ')}`);
        }
        q.statuses = f.Values as TaskStatus[];
        break;
      case 'type':
        if (kind.prefetch) throw new ApiError(E, 'Filter type is not supported for prefetch tasks');
        if (!(PURGE_TYPES as readonly string[]).includes(one())) throw new ApiError(E, `Unknown type "${one()}"; use ${PURGE_TYPES.join(', ')}`);
        q.types = [one() as TaskType];
        break;
      default:
        throw new ApiError(E, `Unknown filter "${f.Name}"`);
    }
  }
  if (p.StartTime !== undefined || p.EndTime !== undefined) {
    if (p.StartTime === undefined || p.EndTime === undefined) throw new ApiError(E, 'StartTime and EndTime must be given together');
    const from = parseIso(p.StartTime, 'StartTime', E);
    const to = parseIso(p.EndTime, 'EndTime', E);
    if (to < from) throw new ApiError(E, 'Parameter error: Invalid "End time". The end time must not be before the start time.');
    if (to - from > SEVEN_DAYS) {
      throw new ApiError(E, 'Parameter error: Invalid "End time". The interval between the start and end time cannot exceed 7 days.');
    }
    q.from = from;
    q.to = endOfSecond(to, p.EndTime);
  } else if (q.jobId === undefined) {
    throw new ApiError(E, 'Either StartTime and EndTime or a job-id filter is required');
  }
  // A zone is the set of its domains: tasks submitted with ZoneId "*" still show under their zone.
  if (p.ZoneId !== undefined && p.ZoneId !== '*') {
    const zone = ctx.directory.zone(ctx.account.appId, p.ZoneId);
    if (!zone) throw new ApiError('InvalidParameter.ZoneNotFound', `zone ${p.ZoneId} does not exist`);
    const inZone = new Set(zone.domains.map((d) => d.host));
    hosts = hosts ? hosts.filter((h) => inZone.has(h)) : [...inZone];
    if (hosts.length === 0) return { TotalCount: 0, Tasks: [] };
  }
  if (hosts) q.hosts = hosts;
  const { total, tasks } = await ctx.store.listTasks(q);
  return { TotalCount: total, Tasks: tasks.map(renderTask) };
}

export function renderTask(t: TaskRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    JobId: t.jobId,
    Target: t.target,
    Type: t.type,
    Method: t.method,
    Status: t.status,
    CreateTime: formatIso(t.createdAt),
    UpdateTime: formatIso(t.updatedAt),
  };
  if (t.failType) out.FailType = t.failType;
  if (t.failMessage) out.FailMessage = t.failMessage;
  return out;
}
