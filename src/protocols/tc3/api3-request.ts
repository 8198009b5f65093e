// Decodes and authenticates an API 3.0 request (TENCENT-API §2.2-§2.5, §7.2-§7.3): TC3-HMAC-SHA256 over
// POST JSON, POST form or GET query; v1 HmacSHA1/HmacSHA256 over POST form or GET query.
import { ApiError } from '../../shared/errors.ts';
import { verifyHmacSignature, hmacMethodOf } from '../hmac-signature.ts';
import type { NonceClaim } from '../nonce-cache.ts';
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
import { parseAuthorization, utcDate, verifyTc3, TC3_ALGORITHM } from './tc3-signature.ts';

/** §2.3: X-TC-Timestamp (and the v1 `Timestamp`) may be at most 5 minutes off the server clock. */
export const API3_TIMESTAMP_WINDOW_SECONDS = 300;

/** §2.5: the v1 common parameters; everything else in a v1 request is the action's input. */
export const V1_COMMON_PARAMS: readonly string[] = [
  'Action', 'Version', 'Region', 'Timestamp', 'Nonce', 'SecretId',
  'SignatureMethod', 'Signature', 'Token', 'Language', 'RequestClient',
];

export type Api3SignatureMethod = typeof TC3_ALGORITHM | 'HmacSHA1' | 'HmacSHA256';

/** A verified API 3.0 request, routed on `version` + `action` (DESIGN "Routing API 3.0"). */
export interface Api3Request {
  readonly action: string;
  readonly version: string;
  /** The action's input: native JSON, or form/query fields rebuilt into arrays and objects (scalars stay strings). */
  readonly params: Record<string, unknown>;
  readonly secretId: string;
  readonly appId: number;
  readonly region?: string;
  readonly language?: string;
  readonly clientIp: string;
  readonly signatureMethod: Api3SignatureMethod;
  /**
   * v1 (HmacSHA1/HmacSHA256) requests carry `Nonce` "to prevent replay" (§2.5): the caller checks it once
   * everything else passed, as for legacy v2. TC3 requests have none: Tencent guards them only by the
   * ±5 min X-TC-Timestamp window (§2.3), and so does EdgePurge (a replay inside it is accepted).
   */
  readonly nonce?: NonceClaim;
}

/**
 * An authenticated API 3.0 request whose input may not be decoded yet: `params()` decodes it (a TC3 JSON
 * body is parsed only then, so a request refused by the rate limit never pays for it) and throws
 * InvalidParameter when it cannot be; it decodes once.
 */
export interface Api3Call extends Omit<Api3Request, 'params'> {
  params(): Record<string, unknown>;
}

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

/**
 * Authenticates, then decodes. Nothing from the payload is trusted before the signature checks out;
 * a body that cannot be parsed as its declared type still gets a clean error code (InvalidParameter).
 * Throws ApiError; the caller renders it with renderApi3Error.
 */
export function decodeApi3Request(input: RawRequest, deps: AuthDeps): Api3Request {
  const { params, ...call } = authenticateApi3Request(input, deps);
  return { ...call, params: params() };
}

/**
 * Authenticates only: the signature, timestamp and credential are checked (throwing as decodeApi3Request
 * does), the input is decoded when the caller asks (`params()`), e.g. after the rate limit admitted it.
 */
export function authenticateApi3Request(input: RawRequest, deps: AuthDeps): Api3Call {
  // §2.7 UnsupportedProtocol: only GET and POST.
  if (input.method !== 'GET' && input.method !== 'POST') {
    throw new ApiError('UnsupportedProtocol', `HTTP method ${quote(input.method, 20)} is not supported; use GET or POST.`);
  }
  const authorization = headerValue(input.headers, 'authorization');
  return authorization !== undefined ? decodeTc3(input, authorization, deps) : decodeV1(input, deps);
}

function decodeTc3(input: RawRequest, authorization: string, deps: AuthDeps): Api3Call {
  const auth = parseAuthorization(authorization);
  const action = nonEmpty(headerValue(input.headers, 'x-tc-action'));
  const version = nonEmpty(headerValue(input.headers, 'x-tc-version'));
  const timestamp = nonEmpty(headerValue(input.headers, 'x-tc-timestamp'));
  const missing = [
    ['X-TC-Action', action],
    ['X-TC-Version', version],
    ['X-TC-Timestamp', timestamp],
  ].filter(([, v]) => v === undefined);
  if (action === undefined || version === undefined || timestamp === undefined) {
    throw new ApiError('MissingParameter', `Missing required header(s): ${missing.map(([n]) => n).join(', ')}.`);
  }
  const ts = checkTimestamp(timestamp, deps.clock, API3_TIMESTAMP_WINDOW_SECONDS, 'X-TC-Timestamp');
  // §2.4: the scope date is the UTC date of X-TC-Timestamp; anything else cannot verify.
  if (auth.date !== utcDate(ts)) {
    throw new ApiError(
      'AuthFailure.SignatureFailure',
      `The credential date ${auth.date} is not the UTC date of X-TC-Timestamp (${utcDate(ts)}); sign with the UTC date.`,
    );
  }
  const credential = requireCredential(deps, auth.secretId);
  const { path, query } = splitUrl(input.rawUrl);
  const verification = verifyTc3({
    auth,
    secretKey: credential.secretKey,
    method: input.method,
    path,
    // §2.4: CanonicalQueryString is the raw query for GET and "" for POST.
    query: input.method === 'GET' ? query : '',
    headers: input.headers,
    body: input.body,
    timestamp,
  });
  if (!verification.ok) {
    throw new ApiError('AuthFailure.SignatureFailure', `The provided credentials could not be validated: ${verification.reason}.`);
  }
  refuseToken(headerValue(input.headers, 'x-tc-token'));

  // Authenticated from here on: the payload is decoded when asked for.
  let params: Record<string, unknown> | undefined;
  return {
    action,
    version,
    params: () =>
      (params ??=
        input.method === 'GET'
          ? unflatten(parseFormEncoded(query))
          : decodeTc3Body(headerValue(input.headers, 'content-type'), input.body)),
    secretId: auth.secretId,
    appId: credential.appId,
    region: nonEmpty(headerValue(input.headers, 'x-tc-region')),
    language: nonEmpty(headerValue(input.headers, 'x-tc-language')),
    clientIp: clientIp(input.remoteAddress),
    signatureMethod: TC3_ALGORITHM,
  };
}

/** §2.2 form 1 (JSON, `; charset=utf-8` allowed) and POST form; the JSON must be an object. */
function decodeTc3Body(contentType: string | undefined, body: Buffer): Record<string, unknown> {
  switch (mediaType(contentType)) {
    case 'application/json':
      return parseJsonObject(body);
    case 'application/x-www-form-urlencoded':
      return unflatten(parseFormEncoded(decodeUtf8(body, 'The form body')));
    case 'multipart/form-data':
      return unflatten(parseMultipartForm(body, contentType ?? ''));
    default:
      throw new ApiError(
        'InvalidParameter',
        `Content-Type ${quote(contentType ?? '(none)', 60)} is not supported; send application/json.`,
      );
  }
}

function parseJsonObject(body: Buffer): Record<string, unknown> {
  const text = decodeUtf8(body, 'The JSON body');
  // An empty body is an empty input (every SDK sends at least `{}`; curl users may send nothing).
  if (text.trim() === '') return {};
  if (nestingExceeds(text, MAX_JSON_DEPTH)) {
    throw new ApiError('InvalidParameter', `The JSON body nests deeper than ${MAX_JSON_DEPTH} levels.`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ApiError('InvalidParameter', `The request body is not valid JSON: ${(e as Error).message}.`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError('InvalidParameter', `The JSON body must be an object of the action's input fields; got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}.`);
  }
  return value as Record<string, unknown>;
}

/** Deepest purge input is 4 levels (`Filters[].Values[]`); absurd nesting would only overflow later recursion. */
const MAX_JSON_DEPTH = 32;

/** True when brackets outside strings nest deeper than `max` (checked before JSON.parse builds anything). */
function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

function decodeV1(input: RawRequest, deps: AuthDeps): Api3Call {
  const { path, query } = splitUrl(input.rawUrl);
  const flat = input.method === 'GET' ? parseFormEncoded(query) : v1FormBody(input);
  const required = ['Action', 'Version', 'SecretId', 'Timestamp', 'Nonce', 'Signature'] as const;
  const missing = required.filter((k) => nonEmpty(flat[k]) === undefined);
  if (missing.length > 0) {
    throw new ApiError(
      'MissingParameter',
      `Missing required parameter(s) ${missing.join(', ')}: sign with TC3-HMAC-SHA256 (Authorization header) or send the v1 common parameters.`,
    );
  }
  const { Action: action, Version: version, SecretId: secretId, Timestamp: timestamp, Nonce: nonce, Signature: signature } =
    flat as Record<(typeof required)[number], string>;
  // §2.5: HmacSHA1 or HmacSHA256 only (TC2 is a legacy qcloudapi mode).
  const method = hmacMethodOf(flat['SignatureMethod']);
  if (method === undefined || method === 'TC2-HmacSHA256') {
    throw new ApiError('InvalidParameterValue', `SignatureMethod must be HmacSHA1 or HmacSHA256; got ${quote(flat['SignatureMethod'] ?? '')}.`);
  }
  if (!/^\d{1,20}$/.test(nonce)) throw new ApiError('InvalidParameter', `Nonce must be a positive integer; got ${quote(nonce)}.`);
  const ts = checkTimestamp(timestamp, deps.clock, API3_TIMESTAMP_WINDOW_SECONDS, 'Timestamp');
  const credential = requireCredential(deps, secretId);
  const result = verifyHmacSignature({
    secretKey: credential.secretKey,
    httpMethod: input.method,
    host: headerValue(input.headers, 'host') ?? '',
    path,
    params: flat,
    signature,
    method,
  });
  if (!result.ok) {
    throw new ApiError(
      'AuthFailure.SignatureFailure',
      `The provided credentials could not be validated: ${method} signature mismatch over ${quote(result.stringToSign, 160)} ` +
        '(Host header with port, keys sorted, raw values).',
    );
  }
  refuseToken(flat['Token']);

  // Decoded now, as the signature needed the fields parsed anyway: a v1 request whose input cannot be
  // rebuilt is refused before the caller records its Nonce.
  const fields: FlatParams = {};
  for (const [k, v] of Object.entries(flat)) if (!V1_COMMON_PARAMS.includes(k)) setOwn(fields, k, v);
  const params = unflatten(fields);
  return {
    action,
    version,
    params: () => params,
    secretId,
    appId: credential.appId,
    region: nonEmpty(flat['Region']),
    language: nonEmpty(flat['Language']),
    clientIp: clientIp(input.remoteAddress),
    signatureMethod: method,
    nonce: { secretId, timestamp: ts, nonce, signature },
  };
}

/** §2.2 form 3: v1 POST carries everything form-encoded in the body. */
function v1FormBody(input: RawRequest): FlatParams {
  const contentType = headerValue(input.headers, 'content-type');
  switch (mediaType(contentType)) {
    case '':
    case 'application/x-www-form-urlencoded':
      return parseFormEncoded(decodeUtf8(input.body, 'The form body'));
    case 'multipart/form-data':
      return parseMultipartForm(input.body, contentType ?? '');
    case 'application/json':
      throw new ApiError('MissingParameter', 'The Authorization header is missing: a JSON body must be signed with TC3-HMAC-SHA256.');
    default:
      throw new ApiError(
        'InvalidParameter',
        `Content-Type ${quote(contentType ?? '', 60)} is not supported; send application/x-www-form-urlencoded.`,
      );
  }
}
