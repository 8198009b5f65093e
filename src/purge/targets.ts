// Target normalisation: what a purge or prefetch target means, and which inputs are refused.
import { ApiError, type ErrorCode } from '../shared/errors.ts';

/** Longest target accepted; longer URLs are refused (CDN `InvalidParameter.CdnUrlExceedLength`). */
export const MAX_TARGET_LENGTH = 4096;

// C0 controls and DEL are never part of a valid URL, host or tag (DESIGN invariant 8).
const CONTROL = /[\u0000-\u001f\u007f]/;
const HOST = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export interface TargetErrors {
  /** Malformed target. */
  readonly invalid: ErrorCode;
  /** Wildcard host. */
  readonly wildcard: ErrorCode;
  /** Over MAX_TARGET_LENGTH. */
  readonly tooLong: ErrorCode;
}

export interface ParsedUrl {
  /** As displayed in task history: the input, or its encoded form with EncodeUrl. */
  readonly display: string;
  /** Canonical absolute URL the edges match (WHATWG-serialised: non-ASCII percent-encoded, no fragment). */
  readonly canonical: string;
  readonly host: string;
}

function checkText(raw: unknown, what: string, errs: TargetErrors): string {
  if (typeof raw !== 'string') throw new ApiError(errs.invalid, `${what} must be a string`);
  // Checked before trimming: a trailing CR/LF/TAB is a control character, not padding to drop.
  if (CONTROL.test(raw)) throw new ApiError(errs.invalid, `${what} contains a control character`);
  const s = raw.trim();
  if (s === '') throw new ApiError(errs.invalid, `${what} is empty`);
  if (s.length > MAX_TARGET_LENGTH) throw new ApiError(errs.tooLong, `${what} is longer than ${MAX_TARGET_LENGTH} characters`);
  return s;
}

/** An absolute http(s) URL target (URL purge, prefix purge, prefetch). */
export function parseUrlTarget(raw: unknown, encode: boolean, errs: TargetErrors): ParsedUrl {
  const s = checkText(raw, 'URL', errs);
  if (!/^https?:\/\//i.test(s)) throw new ApiError(errs.invalid, `"${s}" must start with http:// or https://`);
  // The authority as written (WHATWG treats `\` like `/`): `http:///a` must not become host `a`.
  const authority = s.slice(s.indexOf('//') + 2).split(/[/?#\\]/, 1)[0] ?? '';
  if (authority === '') throw new ApiError(errs.invalid, `"${s}" names no host`);
  if (authority.includes('*')) throw new ApiError(errs.wildcard, `"${s}": wildcard hosts are not supported; list each host`);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new ApiError(errs.invalid, `"${s}" is not a valid URL`);
  }
  if (url.username || url.password) throw new ApiError(errs.invalid, `"${s}" must not carry credentials`);
  if (!HOST.test(url.hostname)) throw new ApiError(errs.invalid, `"${s}" does not name a valid host`);
  url.hash = '';
  const canonical = url.href;
  return { display: encode ? canonical : s, canonical, host: url.hostname };
}

/** A host-name target (purge_host, CacheTag.Domains). Wildcards such as `*.example.com` are refused (§4.1). */
export function parseHostTarget(raw: unknown, errs: TargetErrors): string {
  const s = checkText(raw, 'host', errs).toLowerCase();
  if (s.includes('*')) throw new ApiError(errs.wildcard, `"${s}": wildcard hosts are not supported; list each host`);
  if (!HOST.test(s)) throw new ApiError(errs.invalid, `"${s}" is not a host name (no scheme, port or path)`);
  return s;
}

/** A cache tag: the separators of Cache-Tag (comma) and Surrogate-Key (space) cannot be part of one. */
export function parseTagTarget(raw: unknown, errs: TargetErrors): string {
  const s = checkText(raw, 'tag', errs);
  if (/[\s,]/.test(s)) throw new ApiError(errs.invalid, `tag "${s}" must not contain spaces or commas`);
  if (s.length > 1024) throw new ApiError(errs.tooLong, `tag "${s.slice(0, 32)}…" is longer than 1024 characters`);
  return s;
}
