// TC3-HMAC-SHA256 as small pure functions (TENCENT-API §2.3-§2.4, §7.3): parse, canonicalise, derive,
// sign, verify — plus a signer for our own CLI and tests.
import { createHmac, hash as digestOnce } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ApiError } from '../../shared/errors.ts';
import { constantTimeEqual } from '../hmac-signature.ts';
import { headerValue } from '../request-parts.ts';

export const TC3_ALGORITHM = 'TC3-HMAC-SHA256';
/** §2.3: with `X-TC-Content-SHA256: UNSIGNED-PAYLOAD` the payload hashed is this literal string. */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

export interface Tc3Authorization {
  readonly secretId: string;
  /** Credential-scope date, `YYYY-MM-DD`. */
  readonly date: string;
  /** Credential-scope service, as sent (the Node SDK puts the endpoint's first label here, DESIGN "Routing"). */
  readonly service: string;
  /** Lower-case header names in the order the client listed them. */
  readonly signedHeaders: readonly string[];
  /** 64 lower-case hex digits. */
  readonly signature: string;
}

const invalid = (why: string): ApiError =>
  new ApiError('AuthFailure.InvalidAuthorization', `The Authorization header is malformed: ${why}.`);

/**
 * §2.3: `TC3-HMAC-SHA256 Credential=<SecretId>/<YYYY-MM-DD>/<service>/tc3_request,
 * SignedHeaders=<h1;h2…>, Signature=<64 hex>`. Spaces after the commas are optional. `content-type`
 * and `host` must be among the signed headers (§2.4). Anything else → AuthFailure.InvalidAuthorization.
 */
export function parseAuthorization(header: string): Tc3Authorization {
  // The form every SDK sends: its Credential and SignedHeaders repeat for a client's whole day, only the
  // Signature changes, so their checks are done once (a storm's refusals each parse this header).
  const m = SDK_FORM.exec(header);
  if (m) {
    const id = `${m[1]}\n${m[2]}`;
    let known = parsedScopes.get(id);
    if (!known) {
      const { signature: _, ...rest } = parseAuthorizationFields(header);
      if (parsedScopes.size >= 1024) parsedScopes.clear();
      parsedScopes.set(id, (known = rest));
    }
    return { ...known, signature: m[3]!.toLowerCase() };
  }
  return parseAuthorizationFields(header);
}

/**
 * The SecretId a TC3 Authorization header names, unchecked (nothing else of the header is read): what
 * an answer that proves nothing about the caller may go on, e.g. that this key's account is over its
 * rate limit (see ControlPlane #refuseEarly). undefined when the header is not of that form.
 */
export function claimedSecretId(header: string): string | undefined {
  return CLAIMED.exec(header)?.[1];
}
const CLAIMED = /^TC3-HMAC-SHA256 Credential=([^\s,=/]+)\//;

/** `TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=<64 hex>`, no other spaces: what parseAuthorizationFields reads the same way. */
const SDK_FORM = /^TC3-HMAC-SHA256 Credential=([^\s,=]+), ?SignedHeaders=([^\s,=]+), ?Signature=([0-9a-fA-F]{64})$/;
/** What parseAuthorizationFields made of a (Credential, SignedHeaders) pair that passed its checks. */
const parsedScopes = new Map<string, Omit<Tc3Authorization, 'signature'>>();

function parseAuthorizationFields(header: string): Tc3Authorization {
  const trimmed = header.trim();
  const space = trimmed.search(/\s/);
  const algorithm = space === -1 ? trimmed : trimmed.slice(0, space);
  if (algorithm !== TC3_ALGORITHM) throw invalid(`the algorithm must be ${TC3_ALGORITHM}`);
  const fields = new Map<string, string>();
  for (const part of trimmed.slice(space === -1 ? trimmed.length : space).split(',')) {
    const eq = part.indexOf('=');
    const name = eq === -1 ? part.trim() : part.slice(0, eq).trim();
    if (!['Credential', 'SignedHeaders', 'Signature'].includes(name)) throw invalid(`unexpected field "${name}"`);
    if (fields.has(name)) throw invalid(`${name} is given twice`);
    // A stray space inside the Credential (around the SecretId) is the caller's key being wrong:
    // keep it, so the lookup fails with SecretIdNotFound as Tencent's does (§2.7).
    const value = part.slice(eq + 1);
    fields.set(name, name === 'Credential' ? value.replace(/[\r\n]+$/, '') : value.trim());
  }
  const credential = fields.get('Credential');
  const signedHeadersField = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential === undefined || signedHeadersField === undefined || signature === undefined) {
    throw invalid('Credential, SignedHeaders and Signature are all required');
  }
  const scope = credential.split('/');
  const [secretId, date, service, terminator] = scope;
  if (scope.length !== 4 || !secretId || !date || !service || terminator !== 'tc3_request') {
    throw invalid('Credential must be <SecretId>/<YYYY-MM-DD>/<service>/tc3_request');
  }
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw invalid(`the credential date "${date}" is not YYYY-MM-DD`);
  const signedHeaders = signedHeadersField.split(';');
  if (signedHeaders.some((h) => !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(h))) {
    throw invalid('SignedHeaders must be lower-case header names separated by ";"');
  }
  if (new Set(signedHeaders).size !== signedHeaders.length) throw invalid('SignedHeaders names a header twice');
  if (!signedHeaders.includes('content-type') || !signedHeaders.includes('host')) {
    throw invalid('SignedHeaders must include content-type and host');
  }
  if (!/^[0-9a-fA-F]{64}$/.test(signature)) throw invalid('Signature must be 64 hex digits');
  return { secretId, date, service, signedHeaders, signature: signature.toLowerCase() };
}

// crypto.hash: one call, no Hash object per digest (issue 11: hashing was a visible share of a request).
export const sha256Hex = (data: string | Uint8Array): string => digestOnce('sha256', data, 'hex');

/** §2.4: a header's canonical value is trimmed and lower-cased. */
export const canonicalHeaderValue = (value: string): string => value.trim().toLowerCase();

export interface CanonicalRequestInput {
  readonly method: string;
  /** CanonicalURI: the path as sent (`/`). */
  readonly path: string;
  /** CanonicalQueryString: the raw query as sent for GET, `""` for POST (§2.4). */
  readonly query: string;
  /** Signed headers in SignedHeaders order, with their values as received (canonicalised here). */
  readonly headers: readonly (readonly [name: string, value: string])[];
  /** HexLower(SHA256(payload)): see {@link payloadHash}. */
  readonly payloadHash: string;
}

/**
 * §2.4 CanonicalRequest = METHOD \n URI \n QUERY \n (name:value\n)* \n SignedHeaders \n payload hash.
 * Header names lower-cased, values trimmed and lower-cased, in the order the client signed them.
 */
export function canonicalRequest(r: CanonicalRequestInput): string {
  let headerLines = '';
  let signedHeaders = '';
  for (const [name, value] of r.headers) {
    const lower = name.toLowerCase();
    headerLines += `${lower}:${canonicalHeaderValue(value)}\n`;
    signedHeaders += signedHeaders === '' ? lower : `;${lower}`;
  }
  return `${r.method.toUpperCase()}\n${r.path}\n${r.query}\n${headerLines}\n${signedHeaders}\n${r.payloadHash}`;
}

/** §2.4 / §2.3: the payload hash is over the exact bytes received, or the literal `UNSIGNED-PAYLOAD`. */
export function payloadHash(body: Uint8Array, contentSha256Header: string | undefined): string {
  return contentSha256Header?.trim() === UNSIGNED_PAYLOAD ? sha256Hex(UNSIGNED_PAYLOAD) : sha256Hex(body);
}

/** §2.4: the credential-scope date is the UTC date of the timestamp (local time breaks after midnight). */
export function utcDate(timestampSeconds: number): string {
  // Every request of a day asks for the same date: one Date formatting per day, not per request.
  const day = Math.floor(timestampSeconds / 86_400);
  if (day !== lastDay.day) lastDay = { day, date: new Date(timestampSeconds * 1000).toISOString().slice(0, 10) };
  return lastDay.date;
}
let lastDay = { day: Number.NaN, date: '' };

/** §2.4 StringToSign = algorithm \n timestamp \n date/service/tc3_request \n HexLower(SHA256(CanonicalRequest)). */
export function stringToSign(timestamp: string, date: string, service: string, canonical: string): string {
  return [TC3_ALGORITHM, timestamp, `${date}/${service}/tc3_request`, sha256Hex(canonical)].join('\n');
}

const hmac = (key: string | Buffer, msg: string): Buffer => createHmac('sha256', key).update(msg, 'utf8').digest();

/** §2.4: SecretDate = HMAC("TC3"+SecretKey, Date); SecretService = HMAC(SecretDate, service); SecretSigning = HMAC(·, "tc3_request"). */
export function deriveSigningKey(secretKey: string, date: string, service: string): Buffer {
  return hmac(hmac(hmac(`TC3${secretKey}`, date), service), 'tc3_request');
}

/**
 * The signing key depends only on (secret, date, service), so one derivation serves a key's whole
 * day: three HMACs saved per request, the largest CPU cost of verification under load. Kept as the
 * HMAC's two padded key blocks (RFC 2104: K xor ipad, K xor opad), so that the request's own HMAC is
 * two one-shot digests, without an Hmac object (its construction and key import cost more than the
 * two SHA-256 rounds over a ~130-byte string to sign).
 */
export interface Tc3SigningKey {
  readonly key: Buffer;
  /** The 64-byte blocks as latin1 strings (one character per byte). */
  readonly inner: string;
  readonly outer: string;
}
const signingKeys = new Map<string, Tc3SigningKey>();
function cachedSigningKey(secretKey: string, date: string, service: string): Tc3SigningKey {
  const id = `${date}\u0000${service}\u0000${secretKey}`;
  let key = signingKeys.get(id);
  if (!key) {
    if (signingKeys.size >= 4096) signingKeys.clear();
    key = hmacPads(deriveSigningKey(secretKey, date, service));
    signingKeys.set(id, key);
  }
  return key;
}

/** RFC 2104 for SHA-256 (64-byte blocks): a key of at most 64 bytes (ours: 32) zero-padded, xor 0x36 / 0x5c. */
function hmacPads(key: Buffer): Tc3SigningKey {
  const inner = Buffer.alloc(64, 0x36);
  const outer = Buffer.alloc(64, 0x5c);
  for (let i = 0; i < key.length; i++) {
    inner[i]! ^= key[i]!;
    outer[i]! ^= key[i]!;
  }
  return { key, inner: inner.toString('latin1'), outer: outer.toString('latin1') };
}

/** crypto.hash encodes its digest in any Buffer encoding; @types/node lists only hex and base64(url). */
const digestLatin1 = digestOnce as unknown as (algorithm: string, data: Uint8Array, outputEncoding: 'latin1') => string;

/** Only 7-bit characters: their latin1 and UTF-8 bytes are the same. */
const ASCII = /^[\x00-\x7f]*$/;

/** §2.4: Signature = HexLower(HMAC_SHA256(SecretSigning, StringToSign)). */
export function signTc3(signingKey: Buffer | Tc3SigningKey, toSign: string): string {
  if (Buffer.isBuffer(signingKey) || !ASCII.test(toSign)) {
    return createHmac('sha256', Buffer.isBuffer(signingKey) ? signingKey : signingKey.key).update(toSign, 'utf8').digest('hex');
  }
  const inner = digestLatin1('sha256', Buffer.from(signingKey.inner + toSign, 'latin1'), 'latin1');
  return digestOnce('sha256', Buffer.from(signingKey.outer + inner, 'latin1'), 'hex');
}

/**
 * §2.4 "How real clients fill host": the Node SDK signs the hostname without the port while sending
 * `host:port`; Python/Go/tccli sign exactly what they send. Try as sent, then with the port stripped.
 */
export function hostCandidates(hostHeader: string): readonly string[] {
  // A client sends the same Host on every request: its candidates are worked out once.
  if (hostHeader !== lastHost.header) {
    const stripped = hostHeader.replace(/^(\[[^\]]*\]|[^:]*):\d+$/, '$1');
    lastHost = { header: hostHeader, candidates: stripped === hostHeader ? [hostHeader] : [hostHeader, stripped] };
  }
  return lastHost.candidates;
}
let lastHost: { header: string; candidates: readonly string[] } = { header: '', candidates: [''] };


export interface Tc3VerifyInput {
  readonly auth: Tc3Authorization;
  readonly secretKey: string;
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Uint8Array;
  /** The X-TC-Timestamp header, as sent. */
  readonly timestamp: string;
}

export type Tc3Verification = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * §7.3: recomputes the signature with the scope (date, service) as sent, honouring SignedHeaders,
 * once per host candidate; compares in constant time. The reason names what was checked, never a
 * secret or the expected signature.
 */
export function verifyTc3(input: Tc3VerifyInput): Tc3Verification {
  const { auth } = input;
  const missing = auth.signedHeaders.filter((h) => headerValue(input.headers, h) === undefined);
  if (missing.length > 0) return { ok: false, reason: `signed header(s) ${missing.join(', ')} absent from the request` };
  const hash = payloadHash(input.body, headerValue(input.headers, 'x-tc-content-sha256'));
  const key = cachedSigningKey(input.secretKey, auth.date, auth.service);
  const hosts = hostCandidates(headerValue(input.headers, 'host') ?? '');
  for (const host of hosts) {
    const headers = auth.signedHeaders.map((h) => [h, h === 'host' ? host : headerValue(input.headers, h)!] as const);
    const canonical = canonicalRequest({ method: input.method, path: input.path, query: input.query, headers, payloadHash: hash });
    const expected = signTc3(key, stringToSign(input.timestamp, auth.date, auth.service, canonical));
    // Stopping at the first match tells only which public host form the client signed, never a secret.
    if (constantTimeEqual(expected, auth.signature)) return { ok: true };
  }
  return {
    ok: false,
    reason:
      `TC3 signature mismatch (scope ${auth.date}/${auth.service}/tc3_request, SignedHeaders ${auth.signedHeaders.join(';')}, ` +
      `host tried as ${hosts.map((h) => JSON.stringify(h)).join(' and ')}, payload SHA-256 ${hash})`,
  };
}

export interface Tc3SignRequest {
  readonly secretId: string;
  readonly secretKey: string;
  /** Sent as the Host header and signed as is (like the Python/Go SDKs). */
  readonly host: string;
  /** Credential-scope service: `teo` / `cdn`. */
  readonly service: string;
  readonly action: string;
  readonly version: string;
  /** Unix seconds. */
  readonly timestamp: number;
  readonly body: string | Uint8Array;
  readonly method: 'GET' | 'POST';
  /** Raw (already encoded) query string without `?`; signed for GET only (§2.4). */
  readonly query?: string;
  readonly contentType: string;
  readonly region?: string;
  readonly language?: string;
  readonly token?: string;
}

/** Signs a request as the official SDKs do (§2.3-§2.4) and returns the headers to send with it. */
export function signTc3Request(r: Tc3SignRequest): Record<string, string> {
  const date = utcDate(r.timestamp);
  const canonical = canonicalRequest({
    method: r.method,
    path: '/',
    query: r.method === 'GET' ? (r.query ?? '') : '',
    headers: [
      ['content-type', r.contentType],
      ['host', r.host],
    ],
    payloadHash: sha256Hex(r.body),
  });
  const signature = signTc3(
    deriveSigningKey(r.secretKey, date, r.service),
    stringToSign(String(r.timestamp), date, r.service, canonical),
  );
  const headers: Record<string, string> = {
    Authorization: `${TC3_ALGORITHM} Credential=${r.secretId}/${date}/${r.service}/tc3_request, SignedHeaders=content-type;host, Signature=${signature}`,
    'Content-Type': r.contentType,
    Host: r.host,
    'X-TC-Action': r.action,
    'X-TC-Version': r.version,
    'X-TC-Timestamp': String(r.timestamp),
  };
  if (r.region !== undefined && r.region !== '') headers['X-TC-Region'] = r.region;
  if (r.language !== undefined) headers['X-TC-Language'] = r.language;
  if (r.token !== undefined) headers['X-TC-Token'] = r.token;
  return headers;
}
