// Pieces both protocol decoders share: the raw input shape, credential lookup, URL splitting,
// client address and the signed-timestamp window.
import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../shared/clock.ts';
import { ApiError } from '../shared/errors.ts';
import { quote } from './params.ts';

/** What the HTTP server hands a decoder: nothing is parsed or trusted yet. */
export interface RawRequest {
  readonly method: string;
  /** `req.url` as received: path and query, still percent-encoded. */
  readonly rawUrl: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly remoteAddress: string;
}

export interface Credential {
  readonly secretKey: string;
  readonly appId: number;
}

export interface AuthDeps {
  readonly clock: Clock;
  /** The secret and account of an access key; `undefined` when unknown or disabled. */
  lookupSecret(secretId: string): Credential | undefined;
}

/**
 * A header's value as Node hands it over (repeated headers joined with `, `). Own properties only:
 * Node's headers object is a plain object, so a name from the request (TC3 SignedHeaders) such as
 * `constructor` or `__proto__` would otherwise read Object.prototype's members.
 */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const key = name.toLowerCase();
  if (!Object.hasOwn(headers, key)) return undefined;
  const v = headers[key];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Splits a request target into its raw path and raw query (without `?`), decoding neither: both are signed as sent. */
export function splitUrl(rawUrl: string): { path: string; query: string } {
  const hash = rawUrl.indexOf('#');
  const target = hash === -1 ? rawUrl : rawUrl.slice(0, hash);
  const q = target.indexOf('?');
  return q === -1 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/** The peer address, with IPv4-mapped IPv6 (`::ffff:1.2.3.4`) shown as plain IPv4. */
export const clientIp = (remoteAddress: string): string =>
  remoteAddress.startsWith('::ffff:') ? remoteAddress.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1') : remoteAddress;

/**
 * Checks a signed Unix-seconds timestamp against the server clock: ±300 s for API 3.0 (§2.3, §7.3),
 * ±2 h for legacy v2 (§1.3). Outside the window → AuthFailure.SignatureExpire. Returns the seconds.
 */
export function checkTimestamp(value: string, clock: Clock, windowSeconds: number, label: string): number {
  if (!/^\d{1,12}$/.test(value)) {
    throw new ApiError('InvalidParameter', `${label} must be Unix seconds as a decimal integer; got ${quote(value)}.`);
  }
  const ts = Number(value);
  const now = Math.floor(clock.now() / 1000);
  if (Math.abs(now - ts) > windowSeconds) {
    throw new ApiError(
      'AuthFailure.SignatureExpire',
      `${label} ${ts} is ${Math.abs(now - ts)} s ${ts < now ? 'behind' : 'ahead of'} the server clock (${now}); ` +
        `at most ${windowSeconds} s is allowed. Check the client's clock.`,
    );
  }
  return ts;
}

/** Unknown or disabled key → AuthFailure.SecretIdNotFound (§2.7, §7.3). */
export function requireCredential(deps: AuthDeps, secretId: string): Credential {
  const credential = deps.lookupSecret(secretId);
  if (credential === undefined) {
    throw new ApiError('AuthFailure.SecretIdNotFound', `SecretId ${quote(secretId, 40)} is not found or disabled; check it for stray spaces.`);
  }
  return credential;
}

/**
 * EdgePurge keys are long-lived; temporary credentials (X-TC-Token / Token) are not issued, so a
 * non-empty token can only be a misconfiguration → AuthFailure.TokenFailure.
 */
export function refuseToken(token: string | undefined): void {
  if (token !== undefined && token !== '') {
    throw new ApiError('AuthFailure.TokenFailure', 'Temporary credentials (session tokens) are not supported; sign with a permanent key.');
  }
}
