// Decodes and authenticates a legacy `/v2/index.php` request (TENCENT-API §1.1-§1.3, §1.9, §7.4):
// GET query or POST form/multipart, HmacSHA1/HmacSHA256 over the Host header with port, 2 h window.
// The replay check (../nonce-cache.ts) runs later, once the action, account and rate limit also passed.
import { ApiError } from '../../shared/errors.ts';
import { hmacMethodOf, signingName, verifyHmacSignature } from '../hmac-signature.ts';
import {
  decodeUtf8,
  mediaType,
  parseFormEncoded,
  parseMultipartForm,
  quote,
  setOwn,
  unflatten,
  type FlatParams,
} from '../params.ts';
import {
  checkTimestamp,
  clientIp,
  headerValue,
  refuseToken,
  requireCredential,
  splitUrl,
  type AuthDeps,
  type RawRequest,
} from '../request-parts.ts';
import type { NonceClaim } from '../nonce-cache.ts';

/** §1.3: "Timestamp may differ from server time by at most 2 hours". */
export const V2_TIMESTAMP_WINDOW_SECONDS = 2 * 60 * 60;

/** §1.2: the common parameters (capitalised); everything else is the interface's input (`urls.n`, `startDate`…). */
export const V2_COMMON_PARAMS: readonly string[] = [
  'Action', 'SecretId', 'Timestamp', 'Nonce', 'Signature', 'SignatureMethod', 'Region', 'RequestClient', 'Token',
];

/** A verified legacy request. */
export interface V2Request {
  readonly action: string;
  /** Interface params rebuilt from `name.N` keys: `urls` → string[], `dirs` → string[], `startDate`… (strings). */
  readonly params: Record<string, unknown>;
  readonly secretId: string;
  readonly appId: number;
  readonly clientIp: string;
  /** For the replay check (§1.2), which the caller makes once everything else passed. */
  readonly nonce: NonceClaim;
}

/**
 * Authenticates, then decodes. Order: method, body/query syntax, required params, signature method,
 * timestamp window, key, signature, token. Records no Nonce: a request refused later (unknown action,
 * rate limit) must not use one up, so the caller checks `nonce` after its own checks.
 * Throws ApiError; the caller renders it with renderV2Error.
 */
export function decodeV2Request(input: RawRequest, deps: AuthDeps): V2Request {
  if (input.method !== 'GET' && input.method !== 'POST') {
    throw new ApiError('UnsupportedProtocol', `HTTP method ${quote(input.method, 20)} is not supported; use GET or POST.`);
  }
  const { path, query } = splitUrl(input.rawUrl);
  const received = input.method === 'GET' ? parseFormEncoded(query) : formBody(input);
  const params = normaliseKeys(received);

  const required = ['Action', 'SecretId', 'Timestamp', 'Nonce', 'Signature'] as const;
  const missing = required.filter((k) => (params[k] ?? '') === '');
  if (missing.length > 0) throw new ApiError('MissingParameter', `Missing required parameter(s): ${missing.join(', ')}.`);
  const { Action: action, SecretId: secretId, Timestamp: timestamp, Nonce: nonce, Signature: signature } =
    params as Record<(typeof required)[number], string>;

  // §1.2: HmacSHA256 when SignatureMethod says so, HmacSHA1 when absent (and qcloudapi's TC2 variant).
  const method = hmacMethodOf(params['SignatureMethod']);
  if (method === undefined) {
    throw new ApiError('InvalidParameterValue', `SignatureMethod must be HmacSHA1 or HmacSHA256; got ${quote(params['SignatureMethod'] ?? '')}.`);
  }
  // §1.2: Nonce is a random positive integer (Python-style clients may send up to 19 digits).
  if (!/^\d{1,20}$/.test(nonce)) throw new ApiError('InvalidParameter', `Nonce must be a positive integer; got ${quote(nonce)}.`);
  const ts = checkTimestamp(timestamp, deps.clock, V2_TIMESTAMP_WINDOW_SECONDS, 'Timestamp');
  const credential = requireCredential(deps, secretId);
  const result = verifyHmacSignature({
    secretKey: credential.secretKey,
    httpMethod: input.method,
    // §1.3 step 5: the host the client was configured with, port included, i.e. the Host header as sent.
    host: headerValue(input.headers, 'host') ?? '',
    path,
    // The keys as received: clients sign their own spelling (§1.3 steps 2-3 map `_` to `.` themselves).
    params: received,
    signature,
    method,
  });
  if (!result.ok) {
    throw new ApiError(
      'AuthFailure.SignatureFailure',
      `Signature mismatch: expected base64 ${method} over ${quote(result.stringToSign, 160)} ` +
        '(Host header with port, keys with "_" as ".", sorted, raw values).',
    );
  }
  refuseToken(params['Token']);

  const fields: FlatParams = {};
  for (const [k, v] of Object.entries(params)) if (!V2_COMMON_PARAMS.includes(k)) setOwn(fields, k, v);
  return {
    action,
    params: unflatten(fields),
    secretId,
    appId: credential.appId,
    clientIp: clientIp(input.remoteAddress),
    nonce: { secretId, timestamp: ts, nonce, signature },
  };
}

/** §1.1: POST bodies are `application/x-www-form-urlencoded` or `multipart/form-data`. */
function formBody(input: RawRequest): FlatParams {
  const contentType = headerValue(input.headers, 'content-type');
  switch (mediaType(contentType)) {
    case '':
    case 'application/x-www-form-urlencoded':
      return parseFormEncoded(decodeUtf8(input.body, 'The form body'));
    case 'multipart/form-data':
      return parseMultipartForm(input.body, contentType ?? '');
    default:
      throw new ApiError(
        'InvalidParameter',
        `Content-Type ${quote(contentType ?? '', 60)} is not supported; send application/x-www-form-urlencoded or multipart/form-data.`,
      );
  }
}

/**
 * §1.1: PHP turned `.` into `_`, so `urls_0` and `urls.0` are the same key (a leading `_` is kept,
 * as in the signing rule). Both spellings of one key in a request is a duplicate.
 */
function normaliseKeys(received: FlatParams): FlatParams {
  const out: FlatParams = {};
  for (const [key, value] of Object.entries(received)) {
    const name = signingName(key);
    if (Object.hasOwn(out, name)) throw new ApiError('InvalidParameter', `Parameter ${quote(name)} is given more than once.`);
    setOwn(out, name, value);
  }
  return out;
}
