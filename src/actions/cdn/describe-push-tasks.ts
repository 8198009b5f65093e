// CDN DescribePushTasks (TENCENT-API §3.5).
import type { ActionHandler } from '../context.ts';
import { CDN_FIELDS, int, oneOf, opt, readFields, str } from '../fields.ts';
import { formatCdnTime } from '../times.ts';
import { cdnQuery, cdnStatus } from './cdn-history.ts';

export const describePushTasks: ActionHandler = async (ctx, params) => {
  const p = readFields(
    params,
    {
      StartTime: opt(str()),
      EndTime: opt(str()),
      TaskId: opt(str({ max: 64 })),
      Keyword: opt(str({ max: 4096 })),
      Offset: opt(int({ min: 0 })),
      Limit: opt(int({ min: 1, max: 1000 })),
      Area: opt(oneOf(['mainland', 'overseas', 'global'] as const)),
      Status: opt(str()),
    },
    CDN_FIELDS,
  );
  const { total, tasks } = await ctx.store.listTasks(cdnQuery(ctx, p, ['prefetch_url'], ['fail', 'done', 'process', 'invalid']));
  return {
    PushLogs: tasks.map((t) => ({
      TaskId: t.jobId,
      Url: t.target,
      Status: cdnStatus(t.status),
      Percent: t.status === 'processing' ? 0 : 100,
      CreateTime: formatCdnTime(t.createdAt, ctx.timezone),
      UpdateTime: formatCdnTime(t.updatedAt, ctx.timezone),
      Area: 'mainland',
    })),
    TotalCount: total,
  };
};
