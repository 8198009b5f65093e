// nginx's cache file format: a file nginx 1.22 wrote, our encoder, the expire patch, the shipped snippet.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import test from 'node:test';
import {
  CacheFileError,
  EXPIRE_PATCH_OFFSET,
  cacheFileDirs,
  cacheFileName,
  cacheTags,
  encodeCacheFile,
  expirePatch,
  parseCacheFileHead,
  parseLevels,
} from '../../src/drivers/nginx/cache-file.ts';
import { nginxSnippet } from '../../src/drivers/nginx/nginx-snippet.ts';

/**
 * Written by nginx 1.22.1 (Debian bookworm, x86_64) for `GET http://example.com/a/b?x=1` with
 * proxy_cache_key $scheme://$host$request_uri, Cache-Tag and Surrogate-Key hidden by proxy_hide_header,
 * after one 304 revalidation; stored at cache/0/a2/c62a2bead343df3d775d22b2f1180a20.
 */
const NGINX_FILE = Buffer.from(
  'BQAAAAAAAAAvVBBrAAAAAAAAAAAAAAAAAAAAAAAAAADfRRBrAAAAAB9GEGsAAAAAoBi2QgAAcQFTAgQidjEiAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACktFWTogaHR0cDovL2V4YW1wbGUuY29tL2EvYj94PTEKSFRUUC8xLjEgMjAwIE9LDQpjb250ZW50LXR5cGU6IHRleHQvcGxhaW4NCmNhY2hlLWNvbnRyb2w6IG1heC1hZ2U9MzYwMA0KZXRhZzogInYxIg0KbGFzdC1tb2RpZmllZDogV2VkLCAwMiBEZWMgMjAyNiAxNjoyMjo1NSBHTVQNCmNhY2hlLXRhZzogYSxiDQpzdXJyb2dhdGUta2V5OiBrMSBrMg0KRGF0ZTogV2VkLCAwMiBEZWMgMjAyNiAxNjoyMzo1NSBHTVQNCkNvbm5lY3Rpb246IGNsb3NlDQoNCmJvZHkgL2EvYj94PTEgNSBhZT0=',
  'base64',
);

test('a file nginx wrote: key, dates, ETag, stored (hidden) tag headers', () => {
  const h = parseCacheFileHead(NGINX_FILE);
  assert.equal(h.key, 'http://example.com/a/b?x=1');
  assert.equal(cacheFileName(h.key), 'c62a2bead343df3d775d22b2f1180a20');
  assert.deepEqual(cacheFileDirs(cacheFileName(h.key), parseLevels('1:2')), ['0', 'a2']);
  assert.equal(h.etag, '"v1"');
  assert.equal(h.vary, '');
  assert.equal(h.status, 200);
  assert.equal(h.headerStart, 369);
  assert.equal(h.bodyStart, 595);
  assert.equal(h.validSec - h.dateSec, 3600);
  assert.equal(new Date(h.lastModifiedSec * 1000).toUTCString(), 'Wed, 02 Dec 2026 16:22:55 GMT');
  assert.deepEqual(cacheTags(h).sort(), ['a', 'b', 'k1', 'k2']);
  assert.equal(NGINX_FILE.toString('latin1', h.bodyStart), 'body /a/b?x=1 5 ae=');
});

test('encodeCacheFile writes the bytes nginx writes for the same response (header names aside)', () => {
  const h = parseCacheFileHead(NGINX_FILE);
  const ours = encodeCacheFile({
    key: h.key,
    validSec: h.validSec,
    dateSec: h.dateSec,
    lastModifiedSec: h.lastModifiedSec,
    etag: h.etag,
    headers: h.headers.map(([n, v]) => [n, v] as const),
    body: NGINX_FILE.subarray(h.bodyStart),
  });
  // Header field names are stored as the origin sent them; ours come back lower-cased.
  const norm = (b: Buffer) => b.toString('latin1').toLowerCase();
  assert.equal(norm(ours), norm(NGINX_FILE));
});

test('the expire patch sets valid_sec in the past and clears updating_sec / error_sec, nothing else', () => {
  const f = Buffer.from(NGINX_FILE);
  f.writeBigInt64LE(99n, 16); // updating_sec (stale-while-revalidate)
  expirePatch(1_000_000).copy(f, EXPIRE_PATCH_OFFSET);
  const h = parseCacheFileHead(f);
  assert.equal(h.validSec, 999_999);
  assert.equal(f.readBigInt64LE(16), 0n);
  assert.equal(f.readBigInt64LE(24), 0n);
  assert.deepEqual({ ...h, validSec: 0 }, { ...parseCacheFileHead(NGINX_FILE), validSec: 0 });
});

test('files nginx would not serve are refused: other version, broken KEY line, truncated head, crc mismatch', () => {
  const other = Buffer.from(NGINX_FILE);
  other.writeBigUInt64LE(4n, 0);
  const crc = Buffer.from(NGINX_FILE);
  crc.write('X', 340, 'latin1');
  const noKey = Buffer.from(NGINX_FILE);
  noKey.write('\nKAY: ', 336, 'latin1');
  for (const bad of [other, crc, noKey, NGINX_FILE.subarray(0, 400), NGINX_FILE.subarray(0, 100)]) {
    assert.throws(() => parseCacheFileHead(bad), CacheFileError);
  }
});

test('levels: nginx forms only', () => {
  assert.deepEqual(parseLevels('1:2'), [1, 2]);
  assert.deepEqual(parseLevels('2'), [2]);
  assert.deepEqual(parseLevels(''), []);
  for (const bad of ['3', '1:2:2:1', 'a', '0']) assert.throws(() => parseLevels(bad));
});

test('the shipped edgepurge.conf is nginxSnippet() with its defaults', () => {
  const shipped = readFileSync(new URL('../../src/drivers/nginx/edgepurge.conf', import.meta.url), 'utf8');
  assert.equal(shipped, nginxSnippet());
  assert.match(nginxSnippet({ secret: 'abcdefghijklmnop1234' }), /\$http_x_edgepurge_secret != "abcdefghijklmnop1234"/);
  assert.throws(() => nginxSnippet({ listen: '127.0.0.1:80; evil' }));
  assert.throws(() => nginxSnippet({ secret: 'short' }));
});
