// CDN DescribePushQuota (TENCENT-API §3.5).
import type { ActionHandler } from '../context.ts';
import { CDN_FIELDS, readFields } from '../fields.ts';
import { cdnQuota } from './describe-purge-quota.ts';

export const describePushQuota: ActionHandler = async (ctx, params) => {
  readFields(params, {}, CDN_FIELDS);
  return { UrlPush: await cdnQuota(ctx, 'prefetch_url') };
};
