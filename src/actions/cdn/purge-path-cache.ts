// CDN PurgePathCache (TENCENT-API §3.2): FlushType flush = invalidate (revalidate), delete = drop.
import type { ActionHandler } from '../context.ts';
import { anyArray, bool, CDN_FIELDS, oneOf, opt, readFields, req } from '../fields.ts';
import { AREAS } from './purge-urls-cache.ts';

export const purgePathCache: ActionHandler = async (ctx, params) => {
  const p = readFields(
    params,
    { Paths: req(anyArray()), FlushType: req(oneOf(['flush', 'delete'] as const)), UrlEncode: opt(bool()), Area: opt(oneOf(AREAS)) },
    CDN_FIELDS,
  );
  const result = await ctx.purge.submit({
    account: ctx.account,
    source: 'cdn',
    secretId: ctx.secretId,
    clientIp: ctx.clientIp,
    type: 'purge_prefix',
    method: p.FlushType === 'flush' ? 'invalidate' : 'delete',
    zoneId: null,
    targets: p.Paths,
    encodeUrl: p.UrlEncode ?? false,
  });
  return { TaskId: result.jobId };
};
