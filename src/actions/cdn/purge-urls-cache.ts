// CDN PurgeUrlsCache (TENCENT-API §3.1): one TaskId for the whole batch.
import type { ActionHandler } from '../context.ts';
import { anyArray, bool, CDN_FIELDS, oneOf, opt, readFields, req } from '../fields.ts';

export const AREAS = ['mainland', 'overseas'] as const;

export const purgeUrlsCache: ActionHandler = async (ctx, params) => {
  const p = readFields(params, { Urls: req(anyArray()), Area: opt(oneOf(AREAS)), UrlEncode: opt(bool()) }, CDN_FIELDS);
  const result = await ctx.purge.submit({
    account: ctx.account,
    source: 'cdn',
    secretId: ctx.secretId,
    clientIp: ctx.clientIp,
    type: 'purge_url',
    method: 'delete',
    zoneId: null,
    targets: p.Urls,
    encodeUrl: p.UrlEncode ?? false,
  });
  return { TaskId: result.jobId };
};
