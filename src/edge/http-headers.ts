// Header plumbing for the proxy: hop-by-hop stripping, internal headers, conditional requests.

import { headerValue, type HeaderMap } from './cache-key.ts';

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the legacy Proxy-Connection and Keep-Alive. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Request fields that frame or steer the message itself. The edge decides them for every origin request
 * and never copies the client's: a Content-Length forwarded without its body lets the origin read the
 * next pooled request as that body and answer a smuggled one in its place (issue 7, critical).
 */
const REQUEST_FRAMING = new Set(['content-length', 'transfer-encoding', 'expect']);

/** Origin headers the edge consumes and does not pass to clients (as Cloudflare and Fastly strip them). */
const INTERNAL_RESPONSE = new Set(['cache-tag', 'surrogate-key', 'x-cache']);

/** A copy without hop-by-hop fields, nor those the Connection header names (RFC 9110 §7.6.1). */
export function endToEnd(headers: HeaderMap): HeaderMap {
  const drop = new Set<string>();
  const conn = headerValue(headers, 'connection');
  if (conn !== undefined) for (const t of conn.split(',')) drop.add(t.trim().toLowerCase());
  const out: HeaderMap = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || drop.has(k)) continue;
    out[k] = v;
  }
  return out;
}

/** How the edge frames the body it sends to the origin. */
export type OriginBody = { readonly kind: 'none' } | { readonly kind: 'length'; readonly length: number } | { readonly kind: 'chunked' };

/**
 * End-to-end request headers for the origin with the edge's own framing: no body fields for `none`
 * (GET/HEAD bodies are dropped, as Varnish and nginx do), the client's parser-checked length, or chunked.
 */
export function originRequestHeaders(headers: HeaderMap, body: OriginBody): HeaderMap {
  const out = endToEnd(headers);
  for (const k of REQUEST_FRAMING) delete out[k];
  if (body.kind === 'length') out['content-length'] = String(body.length);
  else if (body.kind === 'chunked') out['transfer-encoding'] = 'chunked';
  return out;
}

/** Response headers as stored and served: without cache tags and any upstream X-Cache. */
export function withoutInternal(headers: HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !INTERNAL_RESPONSE.has(k)) out[k] = v;
  return out;
}

/** Content-Length when present and valid. */
export function contentLength(headers: HeaderMap): number | undefined {
  const v = headerValue(headers, 'content-length');
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

const opaque = (etag: string): string => etag.trim().replace(/^W\//, '');

/**
 * Whether the client's own conditional request is satisfied by a stored response with `headers`
 * (RFC 9110 §13.1.2 weak comparison for If-None-Match; If-Modified-Since only without it, §13.2.2).
 */
export function clientNotModified(request: HeaderMap, headers: HeaderMap): boolean {
  const inm = headerValue(request, 'if-none-match');
  const etag = headerValue(headers, 'etag');
  if (inm !== undefined) {
    if (inm.trim() === '*') return true;
    if (etag === undefined) return false;
    const mine = opaque(etag);
    return inm.split(',').some((t) => opaque(t) === mine);
  }
  const ims = headerValue(request, 'if-modified-since');
  const lm = headerValue(headers, 'last-modified');
  if (ims === undefined || lm === undefined) return false;
  const since = Date.parse(ims);
  const modified = Date.parse(lm);
  return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
}

/** Whether the request carries a validator of the client's own. */
export function isConditional(request: HeaderMap): boolean {
  return request['if-none-match'] !== undefined || request['if-modified-since'] !== undefined;
}
