// Time formats on the wire: EdgeOne ISO 8601 (input with any offset, output in Z) and CDN
// `YYYY-MM-DD HH:mm:ss` in the configured zone (Tencent shows Beijing time, +08:00).
import { ApiError, type ErrorCode } from '../shared/errors.ts';
import { offsetMinutes } from '../purge/quotas.ts';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$/;

export function parseIso(v: string, name: string, code: ErrorCode): number {
  const ms = ISO.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(ms)) throw new ApiError(code, `${name} must be an ISO 8601 time such as 2022-02-09T00:00:00+08:00`);
  return ms;
}

/**
 * An EndTime given to the second covers that whole second: tasks carry milliseconds while every
 * time we print is whole seconds, so `EndTime` = a task's shown CreateTime must still find it.
 */
export const endOfSecond = (ms: number, text: string): number => (/\.\d/.test(text) ? ms : ms + 999);

/** `2022-02-09T02:28:43Z`: whole seconds, as Tencent prints. */
export const formatIso = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

const CDN = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** Parses `YYYY-MM-DD HH:mm:ss` read in zone `tz`; NaN-free: throws `code` on a bad or impossible date. */
export function parseCdnTime(v: string, tz: string, name: string, code: ErrorCode): number {
  const m = CDN.exec(v.trim());
  if (m) {
    const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
    const utc = Date.UTC(y, mo - 1, d, h, mi, s);
    const back = new Date(utc);
    // Reject 2023-02-30 and 25:00:00, which Date.UTC would silently roll over.
    if (back.getUTCMonth() === mo - 1 && back.getUTCDate() === d && h < 24 && mi < 60 && s < 60) {
      return utc - offsetMinutes(tz) * 60_000;
    }
  }
  throw new ApiError(code, `${name} must be a time like 2018-08-08 00:00:00`);
}

/** Zone offsets by zone string: a history page formats thousands of times in one zone. */
const offsetMs = new Map<string, number>();

export function formatCdnTime(ms: number, tz: string): string {
  let off = offsetMs.get(tz);
  if (off === undefined) offsetMs.set(tz, (off = offsetMinutes(tz) * 60_000));
  return new Date(ms + off).toISOString().slice(0, 19).replace('T', ' ');
}
