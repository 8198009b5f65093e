// nginx's on-disk cache file: the binary header, the "KEY:" line and the stored upstream response
// head, read (to index the cache) and patched (to force a revalidation) without nginx's help.
//
// Layout (nginx src/http/ngx_http_cache.h, NGX_HTTP_CACHE_VERSION 5, unchanged since 1.7.x): an
// ngx_http_file_cache_header_t, then "\nKEY: " + the cache key + "\n" (header_start points past it),
// then the raw upstream status line and header fields as received (proxy_hide_header only hides them
// from clients), then the body from body_start. Offsets are those of an LP64 build (x86_64, aarch64):
// ngx_uint_t and time_t are 8 bytes, the struct is padded to 8.
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

/** NGX_HTTP_CACHE_VERSION: files of another version are ignored (and overwritten) by nginx. */
export const CACHE_VERSION = 5;
/** sizeof(ngx_http_file_cache_header_t) on LP64. */
export const HEADER_SIZE = 336;
const KEY_PREFIX = Buffer.from('\nKEY: ', 'latin1');
const ETAG_MAX = 128;
const VARY_MAX = 128;

const OFF = {
  version: 0,
  validSec: 8,
  updatingSec: 16,
  errorSec: 24,
  lastModified: 32,
  date: 40,
  crc32: 48,
  validMsec: 52,
  headerStart: 54,
  bodyStart: 56,
  etagLen: 58,
  etag: 59,
  varyLen: 187,
  vary: 188,
  variant: 316,
} as const;

/** What the index needs from one cache file, all read from its first body_start bytes. */
export interface CacheFileHead {
  /** Seconds since the epoch until which nginx serves it without asking the origin. */
  readonly validSec: number;
  /** When nginx stored (or last revalidated) it: ngx_time() as the upstream response head arrived. */
  readonly dateSec: number;
  readonly lastModifiedSec: number;
  readonly etag: string;
  /** The response's Vary value as nginx stored it ('' without Vary). */
  readonly vary: string;
  /** md5 of the variant (hex) when the response had Vary: the file name of a secondary variant. */
  readonly variant: string;
  /** The cache key, byte for byte (latin1: one char per byte), as the purge module must be given it. */
  readonly key: string;
  readonly headerStart: number;
  readonly bodyStart: number;
  readonly status: number;
  /** Stored upstream header fields, names lower-cased, in order. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** The file name nginx gives a key (and the node key in its keys_zone): md5 of the key bytes, hex. */
export function cacheFileName(key: string): string {
  return createHash('md5').update(Buffer.from(key, 'latin1')).digest('hex');
}

/**
 * Where nginx puts file `name` under `levels` (`proxy_cache_path … levels=1:2`): each level is that
 * many hex digits taken from the end of the name, the last digits first (ngx_create_hashed_filename).
 */
export function cacheFileDirs(name: string, levels: readonly number[]): string[] {
  const dirs: string[] = [];
  let end = name.length;
  for (const n of levels) {
    dirs.push(name.slice(end - n, end));
    end -= n;
  }
  return dirs;
}

/** `levels=1:2` → [1, 2]; '' → [] (all files in the cache directory itself). */
export function parseLevels(levels: string): number[] {
  if (levels.trim() === '') return [];
  const parts = levels.split(':').map((s) => Number(s));
  if (parts.length > 3 || parts.some((n) => !Number.isInteger(n) || n < 1 || n > 2)) {
    throw new TypeError(`levels "${levels}" is not nginx's form (1 to 3 levels of 1 or 2 digits, e.g. 1:2)`);
  }
  return parts;
}

/** Bytes to read to see `bodyStart`, given the fixed header (undefined: not an nginx cache file of our version). */
export function headLength(buf: Buffer): number | undefined {
  if (buf.length < HEADER_SIZE) return undefined;
  if (buf.readBigUInt64LE(OFF.version) !== BigInt(CACHE_VERSION)) return undefined;
  return buf.readUInt16LE(OFF.bodyStart);
}

/** Why a file is not indexed. */
export class CacheFileError extends Error {
  override readonly name = 'CacheFileError';
}

/**
 * Parses the head of a cache file (at least its first body_start bytes). Throws CacheFileError for
 * anything nginx itself would not serve (other version, broken KEY line, truncated head).
 */
export function parseCacheFileHead(buf: Buffer): CacheFileHead {
  const bodyStart = headLength(buf);
  if (bodyStart === undefined) throw new CacheFileError(`not a version ${CACHE_VERSION} nginx cache file`);
  const headerStart = buf.readUInt16LE(OFF.headerStart);
  if (buf.length < bodyStart || headerStart > bodyStart || headerStart < HEADER_SIZE + KEY_PREFIX.length + 1) {
    throw new CacheFileError('truncated head');
  }
  if (!buf.subarray(HEADER_SIZE, HEADER_SIZE + KEY_PREFIX.length).equals(KEY_PREFIX) || buf[headerStart - 1] !== 0x0a) {
    throw new CacheFileError('no KEY line where the header says');
  }
  const keyBytes = buf.subarray(HEADER_SIZE + KEY_PREFIX.length, headerStart - 1);
  if (crc32(keyBytes) !== buf.readUInt32LE(OFF.crc32)) throw new CacheFileError('KEY does not match its crc32');
  const etagLen = Math.min(buf.readUInt8(OFF.etagLen), ETAG_MAX);
  const varyLen = Math.min(buf.readUInt8(OFF.varyLen), VARY_MAX);
  const { status, headers } = parseResponseHead(buf.toString('latin1', headerStart, bodyStart));
  return {
    validSec: Number(buf.readBigInt64LE(OFF.validSec)),
    dateSec: Number(buf.readBigInt64LE(OFF.date)),
    lastModifiedSec: Number(buf.readBigInt64LE(OFF.lastModified)),
    etag: buf.toString('latin1', OFF.etag, OFF.etag + etagLen),
    vary: buf.toString('latin1', OFF.vary, OFF.vary + varyLen),
    variant: varyLen > 0 ? buf.toString('hex', OFF.variant, OFF.variant + 16) : '',
    key: keyBytes.toString('latin1'),
    headerStart,
    bodyStart,
    status,
    headers,
  };
}

function parseResponseHead(text: string): { status: number; headers: Array<[string, string]> } {
  const lines = text.split(/\r?\n/);
  const status = Number(/^HTTP\/\d(?:\.\d)? (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return { status, headers };
}

/**
 * Cache tags of a stored response: `Cache-Tag` comma-separated (Cloudflare, EdgeOne), `Surrogate-Key`
 * space-separated (Fastly, xkey); the same reading as the built-in edge's.
 */
export function cacheTags(head: Pick<CacheFileHead, 'headers'>): string[] {
  const tags = new Set<string>();
  for (const [name, value] of head.headers) {
    if (name === 'cache-tag') for (const t of value.split(',')) if (t.trim() !== '') tags.add(t.trim());
    if (name === 'surrogate-key') for (const t of value.split(/[\s,]+/)) if (t !== '') tags.add(t);
  }
  return [...tags];
}

/**
 * The 24 bytes to write at EXPIRE_PATCH_OFFSET so nginx treats the file as expired: valid_sec in the
 * past, updating_sec and error_sec 0 so that neither the response's stale-while-revalidate nor its
 * stale-if-error lets nginx serve it unrevalidated (ngx_http_file_cache_read: stale_updating is
 * valid_sec + updating_sec >= now). nginx then sends If-None-Match / If-Modified-Since (with
 * proxy_cache_revalidate on) and on 304 rewrites the header itself.
 */
export function expirePatch(nowSec: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigInt64LE(BigInt(nowSec - 1), 0);
  return b;
}
export const EXPIRE_PATCH_OFFSET = OFF.validSec;

/**
 * The version a purged (deleted) file is marked with until it is unlinked in the background: any
 * value but NGX_HTTP_CACHE_VERSION makes ngx_http_file_cache_read log "version mismatch" and decline,
 * so the next request is a MISS (fetched again, the file replaced), even through a descriptor
 * open_file_cache still holds. The index never reads such a file (headLength refuses it).
 */
export const DEAD_VERSION = 0xdead;

/**
 * The 32 bytes to write at offset 0 to mark a file dead: DEAD_VERSION, and the expire patch too (a
 * reader that raced the version check still sees it expired). One write, no read first.
 */
export function deadPatch(nowSec: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(BigInt(DEAD_VERSION), OFF.version);
  expirePatch(nowSec).copy(b, OFF.validSec);
  return b;
}

/** Whether a cache file's first 8 bytes mark it dead (deadPatch). */
export function isDead(first8: Buffer): boolean {
  return first8.length >= 8 && first8.readBigUInt64LE(0) === BigInt(DEAD_VERSION);
}

export interface CacheFileSpec {
  readonly key: string;
  readonly status?: number;
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body?: string | Buffer;
  readonly validSec: number;
  readonly dateSec: number;
  readonly lastModifiedSec?: number;
  readonly etag?: string;
}

/**
 * A cache file exactly as nginx would write it for a response without Vary (tests and the bench fill
 * a cache directory with these; nginx serves them as HITs).
 */
export function encodeCacheFile(spec: CacheFileSpec): Buffer {
  const key = Buffer.from(spec.key, 'latin1');
  const etag = Buffer.from(spec.etag ?? '', 'latin1');
  if (etag.length > ETAG_MAX) throw new TypeError('etag longer than nginx stores');
  const statusLine = `HTTP/1.1 ${spec.status ?? 200} OK\r\n`;
  const fields = (spec.headers ?? []).map(([n, v]) => `${n}: ${v}\r\n`).join('');
  const head = Buffer.from(`${statusLine}${fields}\r\n`, 'latin1');
  const headerStart = HEADER_SIZE + KEY_PREFIX.length + key.length + 1;
  const bodyStart = headerStart + head.length;
  if (bodyStart > 0xffff) throw new TypeError('head longer than nginx stores');
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeBigUInt64LE(BigInt(CACHE_VERSION), OFF.version);
  h.writeBigInt64LE(BigInt(spec.validSec), OFF.validSec);
  h.writeBigInt64LE(BigInt(spec.lastModifiedSec ?? -1), OFF.lastModified);
  h.writeBigInt64LE(BigInt(spec.dateSec), OFF.date);
  h.writeUInt32LE(crc32(key), OFF.crc32);
  h.writeUInt16LE(headerStart, OFF.headerStart);
  h.writeUInt16LE(bodyStart, OFF.bodyStart);
  h.writeUInt8(etag.length, OFF.etagLen);
  etag.copy(h, OFF.etag);
  const body = typeof spec.body === 'string' ? Buffer.from(spec.body) : (spec.body ?? Buffer.alloc(0));
  return Buffer.concat([h, KEY_PREFIX, key, Buffer.from('\n'), head, body]);
}
