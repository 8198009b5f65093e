// Renders legacy /v2/index.php answers: `{"code","message","codeDesc","data"}` (TENCENT-API §1.4, §7.6).
// The one place legacy error JSON is built (STYLE 6).
import { ERRORS, isApiError, type ApiError } from '../../shared/errors.ts';
import { jsonReply, type ErrorLog, type JsonReply } from '../json-reply.ts';

/**
 * §1.4 success: `{"code":0,"message":"","codeDesc":"Success"}` plus `data` when the action returns any.
 * The older `retcode`/`errmsg` pair of the GetCdnRefreshLog example (§1.7, seed 000) rides along, for
 * scripts that still test `retcode == 0`.
 */
export function renderV2Success(data?: Record<string, unknown>): JsonReply {
  const head = { retcode: 0, errmsg: 'ok', code: 0, message: '', codeDesc: 'Success' };
  return jsonReply(data === undefined ? head : { ...head, data });
}

/**
 * §1.4 failure: `code` is the common code; with a CDN module code, `message` is `(NNNN)` + text (as in
 * the documented `(9110)…cdn no such host`) and `codeDesc` is the module code as a string; without one,
 * `message` is the text and `codeDesc` the API 3.0 dotted code. Unknown errors are logged and leave as 6000.
 */
export function renderV2Error(err: unknown, log: ErrorLog): JsonReply {
  if (isApiError(err)) return jsonReply(legacyBody(err));
  log('unexpected error while handling a legacy v2 request', err);
  return jsonReply({ code: ERRORS.InternalError.legacy.code, message: ERRORS.InternalError.message, codeDesc: 'InternalError' });
}

function legacyBody(err: ApiError): { code: number; message: string; codeDesc: string } {
  const { code, module } = err.legacy;
  return module === undefined
    ? { code, message: err.message, codeDesc: err.code }
    : { code, message: `(${module})${err.message}`, codeDesc: String(module) };
}
