// CDN DescribePurgeTasks (TENCENT-API §3.3): URL and directory purges in CDN shape.
import type { ActionHandler } from '../context.ts';
import { CDN_FIELDS, int, oneOf, opt, readFields, str } from '../fields.ts';
import { formatCdnTime } from '../times.ts';
import { cdnQuery, cdnStatus } from './cdn-history.ts';

export const describePurgeTasks: ActionHandler = async (ctx, params) => {
  const p = readFields(
    params,
    {
      PurgeType: opt(oneOf(['url', 'path'] as const)),
      StartTime: opt(str()),
      EndTime: opt(str()),
      TaskId: opt(str({ max: 64 })),
      Offset: opt(int({ min: 0 })),
      Limit: opt(int({ min: 1, max: 1000 })),
      Keyword: opt(str({ max: 4096 })),
      Status: opt(str()),
      Area: opt(oneOf(['mainland', 'overseas', 'global'] as const)),
    },
    CDN_FIELDS,
  );
  const types = p.PurgeType === 'url' ? (['purge_url'] as const) : p.PurgeType === 'path' ? (['purge_prefix'] as const) : (['purge_url', 'purge_prefix'] as const);
  const { total, tasks } = await ctx.store.listTasks(cdnQuery(ctx, p, types, ['fail', 'done', 'process']));
  return {
    PurgeLogs: tasks.map((t) => ({
      TaskId: t.jobId,
      Url: t.target,
      Status: cdnStatus(t.status),
      PurgeType: t.type === 'purge_url' ? 'url' : 'path',
      FlushType: t.method === 'invalidate' ? 'flush' : 'delete',
      CreateTime: formatCdnTime(t.createdAt, ctx.timezone),
      Area: 'mainland',
    })),
    TotalCount: total,
  };
};
