// CDN DescribePurgeQuota (TENCENT-API §3.4): live counters, the same ones EdgeOne and legacy calls use.
import { available, quotaFor } from '../../purge/quotas.ts';
import type { TaskType } from '../../purge/types.ts';
import type { ActionContext, ActionHandler } from '../context.ts';
import { CDN_FIELDS, readFields } from '../fields.ts';

/** EdgePurge has one area: every domain is served as `mainland`. */
export async function cdnQuota(ctx: ActionContext, type: TaskType) {
  const used = (await ctx.purge.usage(ctx.account)).get(type) ?? 0;
  const limit = quotaFor(ctx.account.quotas, type);
  return [{ Area: 'mainland', Batch: limit.batch, Total: limit.daily, Available: available(limit, used) }];
}

export const describePurgeQuota: ActionHandler = async (ctx, params) => {
  readFields(params, {}, CDN_FIELDS);
  return { UrlPurge: await cdnQuota(ctx, 'purge_url'), PathPurge: await cdnQuota(ctx, 'purge_prefix') };
};
