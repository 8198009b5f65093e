// Renders API 3.0 answers: `{"Response":{…,"RequestId"}}` and `{"Response":{"Error":{Code,Message},"RequestId"}}`
// (TENCENT-API §2.6, §7.1). The one place API 3.0 error JSON is built (STYLE 6).
import { ERRORS, isApiError } from '../../shared/errors.ts';
import { jsonReply, type ErrorLog, type JsonReply } from '../json-reply.ts';

/** §2.6: the action's output fields plus `RequestId`, wrapped in `Response`; HTTP 200. */
export function renderApi3Success(fields: Record<string, unknown>, requestId: string): JsonReply {
  return jsonReply({ Response: { ...fields, RequestId: requestId } });
}

/**
 * §2.6: errors are HTTP 200 with `Response.Error`. An ApiError keeps its code and message; anything
 * else is logged with its cause and leaves as InternalError with the generic text (no stack, no detail).
 */
export function renderApi3Error(err: unknown, requestId: string, log: ErrorLog): JsonReply {
  if (isApiError(err)) {
    return jsonReply({ Response: { Error: { Code: err.code, Message: err.message }, RequestId: requestId } });
  }
  log(`unexpected error while handling API 3.0 request ${requestId}`, err);
  return jsonReply({
    Response: { Error: { Code: 'InternalError', Message: ERRORS.InternalError.message }, RequestId: requestId },
  });
}
