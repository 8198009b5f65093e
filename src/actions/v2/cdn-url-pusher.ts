// Legacy CdnUrlPusher (TENCENT-API §1.8): prefetch `urls.n`; one unique task_id per request.
import { ApiError } from '../../shared/errors.ts';
import type { ActionHandler } from '../context.ts';
import { int, opt, readFields, req } from '../fields.ts';
import { list, V2_FIELDS, withoutBlanks } from './legacy-fields.ts';

/** §1.8: "20 per request" — stricter than the shared prefetch batch (500, API 3.0 §3.5), so checked here. */
export const LEGACY_PUSH_BATCH = 20;

export const cdnUrlPusher: ActionHandler = async (ctx, params) => {
  const p = readFields(
    withoutBlanks(params),
    {
      urls: req(list()),
      // §1.8: origin bandwidth cap per domain, in Mbps. Accepted for compatibility; EdgePurge's edges
      // fetch prefetched objects one by one and have no per-domain bandwidth cap to apply it to.
      limitRate: opt(int({ min: 1 })),
    },
    V2_FIELDS,
  );
  if (p.urls.length > LEGACY_PUSH_BATCH) {
    throw new ApiError('LimitExceeded.CdnPushExceedBatchLimit', `${p.urls.length} URLs exceed the limit of ${LEGACY_PUSH_BATCH} per CdnUrlPusher request`);
  }
  // The 1,000-a-day limit is the shared prefetch_url quota (21000 when exhausted).
  const result = await ctx.purge.submit({
    account: ctx.account,
    source: 'v2',
    secretId: ctx.secretId,
    clientIp: ctx.clientIp,
    type: 'prefetch_url',
    method: 'invalidate',
    zoneId: null,
    targets: p.urls,
    encodeUrl: false,
    // The User-Agent Tencent's prefetch sends by default (as CDN PushUrlsCache).
    headers: { 'User-Agent': 'TencentCdn' },
  });
  return { task_id: result.jobId, count: result.tasks.length };
};
