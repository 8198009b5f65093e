// EdgeOne DescribeContentQuota (TENCENT-API §4.5): live counters shared with every other API.
import { ApiError } from '../../shared/errors.ts';
import { available, quotaFor } from '../../purge/quotas.ts';
import { PURGE_TYPES, type TaskType } from '../../purge/types.ts';
import type { ActionHandler } from '../context.ts';
import { readFields, req, str, TEO_FIELDS } from '../fields.ts';

export const describeContentQuota: ActionHandler = async (ctx, params) => {
  const p = readFields(params, { ZoneId: req(str({ max: 64 })) }, TEO_FIELDS);
  if (p.ZoneId !== '*' && !ctx.directory.zone(ctx.account.appId, p.ZoneId)) {
    throw new ApiError('InvalidParameter.ZoneNotFound', `zone ${p.ZoneId} does not exist`);
  }
  const used = await ctx.purge.usage(ctx.account);
  const quota = (type: TaskType) => {
    const limit = quotaFor(ctx.account.quotas, type);
    return { Type: type, Batch: limit.batch, Daily: limit.daily, DailyAvailable: available(limit, used.get(type) ?? 0) };
  };
  return { PurgeQuota: PURGE_TYPES.map(quota), PrefetchQuota: [quota('prefetch_url')] };
};
