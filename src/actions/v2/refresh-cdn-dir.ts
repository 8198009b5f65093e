// Legacy RefreshCdnDir (TENCENT-API §1.6, seed 002): expire everything under `dirs.n` — a purge_prefix
// job, on the same history and the same 100-a-day quota as EdgeOne and CDN PurgePathCache.
import { ApiError } from '../../shared/errors.ts';
import type { Method } from '../../purge/types.ts';
import type { ActionHandler } from '../context.ts';
import { opt, readFields, req, type Reader } from '../fields.ts';
import { list, V2_FIELDS, withoutBlanks } from './legacy-fields.ts';

/** §1.6 `type`: 1 (default) refreshes only what changed at the origin = invalidate (revalidate); 2 refreshes all = delete. */
const flushType: Reader<Method> = (v, name) => {
  if (v === '1' || v === 1) return 'invalidate';
  if (v === '2' || v === 2) return 'delete';
  throw new ApiError(V2_FIELDS.invalid, `${name} must be 1 (refresh changed resources) or 2 (refresh all resources)`);
};

export const refreshCdnDir: ActionHandler = async (ctx, params) => {
  const p = readFields(withoutBlanks(params), { dirs: req(list()), type: opt(flushType) }, V2_FIELDS);
  // Each dir must start with http:// or https:// (checked per target by the purge domain, 9003);
  // 20 per request and 100 a day are the shared purge_prefix quota (22045 / 22046).
  const result = await ctx.purge.submit({
    account: ctx.account,
    source: 'v2',
    secretId: ctx.secretId,
    clientIp: ctx.clientIp,
    type: 'purge_prefix',
    method: p.type ?? 'invalidate',
    zoneId: null,
    targets: p.dirs,
    encodeUrl: false,
  });
  // The documented body has no `data` (§1.6); count and task_id are the harmless superset §1.6 suggests,
  // and task_id is what GetCdnRefreshLog takes.
  return { count: result.tasks.length, task_id: result.jobId };
};
