// CDN PushUrlsCache (TENCENT-API §3.5): prefetch URLs into the edge caches.
import type { ActionHandler } from '../context.ts';
import { anyArray, array, bool, CDN_FIELDS, object, oneOf, opt, readFields, req, str } from '../fields.ts';
import { prefetchHeaders } from '../teo/create-prefetch-task.ts';

const header = object({ Name: req(str({ max: 128 })), Value: req(str({ max: 1024 })) });

export const pushUrlsCache: ActionHandler = async (ctx, params) => {
  const p = readFields(
    params,
    {
      Urls: req(anyArray()),
      UserAgent: opt(str({ max: 1024 })),
      Area: opt(oneOf(['mainland', 'overseas', 'global'] as const)),
      Layer: opt(str({ max: 32 })),
      ParseM3U8: opt(bool()),
      DisableRange: opt(bool()),
      Headers: opt(array(header, { max: 20 })),
      UrlEncode: opt(bool()),
    },
    CDN_FIELDS,
  );
  const headers = { ...prefetchHeaders(p.Headers), 'User-Agent': p.UserAgent ?? 'TencentCdn' };
  const result = await ctx.purge.submit({
    account: ctx.account,
    source: 'cdn',
    secretId: ctx.secretId,
    clientIp: ctx.clientIp,
    type: 'prefetch_url',
    method: 'invalidate',
    zoneId: null,
    targets: p.Urls,
    encodeUrl: p.UrlEncode ?? false,
    headers,
  });
  return { TaskId: result.jobId };
};
