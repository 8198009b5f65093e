// EdgeOne CreatePrefetchTask (TENCENT-API §4.3).
import { ApiError } from '../../shared/errors.ts';
import type { ActionHandler } from '../context.ts';
import { anyArray, array, bool, object, oneOf, opt, readFields, req, str, TEO_FIELDS } from '../fields.ts';

export const prefetchHeaders = (list: ReadonlyArray<{ Name: string; Value: string }> | undefined): Record<string, string> | undefined => {
  if (!list || list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const { Name, Value } of list) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/.test(Name)) throw new ApiError('InvalidParameterValue', `header name "${Name}" is not a valid HTTP token`);
    if (/^(host|content-length|transfer-encoding|connection)$/i.test(Name)) throw new ApiError('InvalidParameterValue', `header ${Name} cannot be set for a prefetch`);
    out[Name] = Value;
  }
  return out;
};

const header = object({ Name: req(str({ max: 128 })), Value: req(str({ max: 1024 })) });

export const createPrefetchTask: ActionHandler = async (ctx, params) => {
  const p = readFields(
    params,
    {
      ZoneId: req(str({ max: 64 })),
      Targets: req(anyArray()),
      Mode: opt(oneOf(['default', 'edge'] as const)),
      EncodeUrl: opt(bool()),
      Headers: opt(array(header, { max: 20 })),
      PrefetchMediaSegments: opt(oneOf(['on', 'off'] as const)),
    },
    TEO_FIELDS,
  );
  const headers = prefetchHeaders(p.Headers);
  const result = await ctx.purge.submit({
    account: ctx.account,
    source: 'teo',
    secretId: ctx.secretId,
    clientIp: ctx.clientIp,
    type: 'prefetch_url',
    method: 'invalidate',
    zoneId: p.ZoneId,
    targets: p.Targets,
    encodeUrl: p.EncodeUrl ?? false,
    ...(headers ? { headers } : {}),
  });
  return { JobId: result.jobId, FailedList: result.failed.map((f) => ({ Reason: f.reason, Targets: f.targets })) };
};
