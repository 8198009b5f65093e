// How requests and purge targets name cached objects: canonical host, path+query, Vary values, tags.

import type { IncomingHttpHeaders } from 'node:http';
import { canonicalHost } from '../shared/host-port.ts';

/** Header values as node:http and http-cache-semantics carry them. */
export type HeaderMap = Record<string, string | string[] | undefined>;

/** The host part of a cache key (in src/shared, so that the cache drivers share it). */
export { canonicalHost };

const BASE = 'http://edge.invalid';

/**
 * The path part of a cache key from a request line's target (RFC 9112 §3.2), WHATWG-normalised
 * path + query (dot segments resolved, fragment dropped) so that it agrees with purge target URLs.
 * The target is origin-form: origin-form (`/p?q`, read as a path even when it starts
 * with `//`) or absolute-form (`http://host/p`, whose authority replaces the Host header, §3.2.2).
 * Asterisk- and authority-form are not requests for a cached resource: they throw, as garbage does.
 */
export function parseRequestTarget(target: string): { readonly host?: string; readonly path: string } {
  if (target.startsWith('/')) {
    const u = new URL(BASE + target);
    return { path: u.pathname + u.search };
  }
  if (/^https?:\/\//i.test(target)) {
    const u = new URL(target);
    if (u.host === '' || u.username !== '' || u.password !== '') throw new TypeError('bad absolute-form target');
    return { host: canonicalHost(u.host), path: u.pathname + u.search };
  }
  throw new TypeError('request target is neither origin-form nor absolute-form');
}

/** A purge or prefetch target URL split into cache-key parts; undefined when it is not a URL. */
export function parseTargetUrl(target: string): { host: string; path: string } | undefined {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    return undefined;
  }
  if (u.host === '') return undefined;
  return { host: canonicalHost(u.host), path: u.pathname + u.search };
}

export const cacheKey = (host: string, path: string): string => host + path;

/** One header as a single string (repeated fields joined with ", ", RFC 9110 §5.3). */
export function headerValue(headers: HeaderMap | IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** The lower-cased field names listed by a Vary header; ['*'] for `Vary: *`. */
export function varyNames(vary: string | undefined): string[] {
  if (vary === undefined) return [];
  return vary
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

/**
 * Cache tags of a response: `Cache-Tag` is comma-separated (Cloudflare, EdgeOne), `Surrogate-Key` is
 * space-separated (Fastly, Varnish xkey). Trimmed, de-duplicated, case kept.
 */
export function parseTags(headers: HeaderMap | IncomingHttpHeaders): string[] {
  const tags = new Set<string>();
  const cacheTag = headerValue(headers, 'cache-tag');
  if (cacheTag !== undefined) for (const t of cacheTag.split(',')) if (t.trim() !== '') tags.add(t.trim());
  const surrogate = headerValue(headers, 'surrogate-key');
  if (surrogate !== undefined) for (const t of surrogate.split(/[\s,]+/)) if (t !== '') tags.add(t);
  return [...tags];
}
