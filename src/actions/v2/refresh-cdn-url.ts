// Legacy RefreshCdnUrl (TENCENT-API §1.5): delete the cached copies of `urls.n`; one task_id per request.
import type { ActionHandler } from '../context.ts';
import { readFields, req } from '../fields.ts';
import { list, V2_FIELDS, withoutBlanks } from './legacy-fields.ts';

export const refreshCdnUrl: ActionHandler = async (ctx, params) => {
  const p = readFields(withoutBlanks(params), { urls: req(list()) }, V2_FIELDS);
  // 1,000 per request and 10,000 a day are the shared purge_url quota: refusals come back as 22043 / 22044.
  const result = await ctx.purge.submit({
    account: ctx.account,
    source: 'v2',
    secretId: ctx.secretId,
    clientIp: ctx.clientIp,
    type: 'purge_url',
    // §1.5: "删除 CDN 全网节点上缓存的指定资源" — the copies are deleted, as CDN PurgeUrlsCache does.
    method: 'delete',
    zoneId: null,
    targets: p.urls,
    encodeUrl: false,
  });
  // `count` is what was queued and charged: a URL repeated in one request is one task.
  return { count: result.tasks.length, task_id: result.jobId };
};
