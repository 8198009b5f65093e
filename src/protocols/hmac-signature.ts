// The parameter-signature of legacy v2 and API 3.0 "v1" requests: HmacSHA1 / HmacSHA256 over
// METHOD + host + path + '?' + sorted raw params (TENCENT-API §1.3, §2.5, §7.4).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FlatParams } from './params.ts';

/**
 * `HmacSHA1` (the default when `SignatureMethod` is absent), `HmacSHA256`, or qcloudapi-sdk's rare
 * opt-in `TC2-HmacSHA256` (HMAC-SHA256 over a hash of the parameter string, §1.3 last paragraph).
 */
export type HmacSignatureMethod = 'HmacSHA1' | 'HmacSHA256' | 'TC2-HmacSHA256';

/** §1.2 / §2.5: the `SignatureMethod` parameter; absent or empty means HmacSHA1. Unknown → undefined. */
export function hmacMethodOf(signatureMethod: string | undefined): HmacSignatureMethod | undefined {
  switch (signatureMethod ?? '') {
    case '':
    case 'HmacSHA1':
      return 'HmacSHA1';
    case 'HmacSHA256':
      return 'HmacSHA256';
    case 'TC2-HmacSHA256':
      return 'TC2-HmacSHA256';
    default:
      return undefined;
  }
}

/** §1.3 step 2: `_` becomes `.`, except that a key starting with `_` keeps its underscores (qcloudapi-sdk). */
export const signingName = (key: string): string => (key.startsWith('_') ? key : key.replaceAll('_', '.'));

/**
 * How clients order and name keys; they differ only when a key contains `_`:
 * - `dotted`: rename (`_`→`.`) then sort — the documented rule (§1.3 steps 2-3), the Python SDK;
 * - `qcloudapi`: sort the keys as sent, then rename — what qcloudapi-sdk 0.2.1 actually does;
 * - `raw`: sort, no renaming — the Node SDK's API 3.0 v1 signer (§2.5).
 */
export type KeyStyle = 'dotted' | 'qcloudapi' | 'raw';
export const KEY_STYLES: readonly KeyStyle[] = ['dotted', 'qcloudapi', 'raw'];

/**
 * §1.3 steps 1-4: every parameter except `Signature`, empty values included, sorted by key in
 * ascending code-unit order (= byte order for the ASCII keys clients send; it is JS's own sort, which
 * both Node clients use), joined as `key=value` with raw (decoded) values.
 */
export function hmacParamString(params: FlatParams, style: KeyStyle = 'dotted'): string {
  const keys = Object.keys(params).filter((k) => k !== 'Signature');
  const pairs =
    style === 'dotted'
      ? keys.map((k) => [signingName(k), params[k]!] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      : keys.sort().map((k) => [style === 'raw' ? k : signingName(k), params[k]!] as const);
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/**
 * §1.3 step 5 / §2.5: `METHOD` + host (as the client configured it, with `:port`) + path + `?` + the
 * parameter string. For TC2-HmacSHA256 the part after `?` is `\n` + hex(sha256(parameter string)).
 */
export function hmacStringToSign(
  httpMethod: string,
  host: string,
  path: string,
  params: FlatParams,
  method: HmacSignatureMethod,
  style: KeyStyle = 'dotted',
): string {
  const paramString = hmacParamString(params, style);
  const tail = method === 'TC2-HmacSHA256' ? `\n${createHash('sha256').update(paramString).digest('hex')}` : paramString;
  return `${httpMethod.toUpperCase()}${host}${path}?${tail}`;
}

/** §1.3 step 6: base64(HMAC(SecretKey, stringToSign)), SHA-1 for HmacSHA1, SHA-256 otherwise. */
export function hmacSign(secretKey: string, stringToSign: string, method: HmacSignatureMethod): string {
  const algorithm = method === 'HmacSHA1' ? 'sha1' : 'sha256';
  return createHmac(algorithm, secretKey).update(stringToSign, 'utf8').digest('base64');
}

/** Compares two strings in time independent of where they differ (their lengths are not secret). */
export function constantTimeEqual(a: string, b: string): boolean {
  // Over the UTF-16 code units, without encoding either string (every TC3 request compares one signature).
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Compares two secrets in time independent of their contents and of their lengths: both are hashed
 * first, so a guess learns nothing, not even the secret's length.
 */
export function secretsEqual(a: string, b: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

export interface HmacVerifyInput {
  readonly secretKey: string;
  readonly httpMethod: string;
  /** The Host header exactly as received: clients sign the endpoint including its port (§1.3 step 5). */
  readonly host: string;
  readonly path: string;
  /** Every parameter received, `Signature` included (it is left out of the string to sign). */
  readonly params: FlatParams;
  readonly signature: string;
  readonly method: HmacSignatureMethod;
  /** Key styles to accept; all three by default (they only differ when a key contains `_`). */
  readonly styles?: readonly KeyStyle[];
}

/**
 * Verifies a v1/v2 signature. Every accepted key style is a genuine official-client behaviour, and
 * each still needs the secret key. Returns the documented (`dotted`) string to sign for diagnostics.
 */
export function verifyHmacSignature(input: HmacVerifyInput): { ok: boolean; stringToSign: string } {
  const candidates = new Set(
    (input.styles ?? KEY_STYLES).map((style) =>
      hmacStringToSign(input.httpMethod, input.host, input.path, input.params, input.method, style),
    ),
  );
  let ok = false;
  // No early exit: the work done does not depend on which candidate matched.
  for (const s of candidates) ok = constantTimeEqual(hmacSign(input.secretKey, s, input.method), input.signature) || ok;
  const documented = hmacStringToSign(input.httpMethod, input.host, input.path, input.params, input.method, 'dotted');
  return { ok, stringToSign: documented };
}
