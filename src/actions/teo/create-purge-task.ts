// EdgeOne CreatePurgeTask (TENCENT-API §4.1).
import { PURGE_TYPES, METHODS, type Method, type PurgeType } from '../../purge/types.ts';
import type { ActionHandler } from '../context.ts';
import { anyArray, bool, object, oneOf, opt, readFields, req, str, TEO_FIELDS } from '../fields.ts';

/** Method applies to prefix, host and all purges; URL and tag purges delete (§4.1) unless told otherwise. */
export const defaultMethod = (type: PurgeType): Method =>
  type === 'purge_url' || type === 'purge_cache_tag' ? 'delete' : 'invalidate';

/** The input's fields, built once (not per request). */
const FIELDS = {
  ZoneId: req(str({ max: 64 })),
  Type: req(oneOf(PURGE_TYPES)),
  Method: opt(oneOf(METHODS)),
  Targets: opt(anyArray()),
  EncodeUrl: opt(bool()),
  CacheTag: opt(object({ Domains: opt(anyArray()) })),
};

export const createPurgeTask: ActionHandler = async (ctx, params) => {
  const p = readFields(params, FIELDS, TEO_FIELDS);
  const result = await ctx.purge.submit({
    account: ctx.account,
    source: 'teo',
    secretId: ctx.secretId,
    clientIp: ctx.clientIp,
    type: p.Type,
    method: p.Method ?? defaultMethod(p.Type),
    zoneId: p.ZoneId,
    targets: p.Type === 'purge_all' ? [] : (p.Targets ?? []),
    encodeUrl: p.EncodeUrl ?? false,
    ...(p.CacheTag?.Domains ? { tagDomains: p.CacheTag.Domains } : {}),
  });
  return { JobId: result.jobId, FailedList: result.failed.map((f) => ({ Reason: f.reason, Targets: f.targets })) };
};
