// The nginx cache index and the sweep that keeps it current, on generated cache files in a temp dir.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { systemClock } from '../../src/shared/clock.ts';
import { cacheFileDirs, cacheFileName, encodeCacheFile } from '../../src/drivers/nginx/cache-file.ts';
import { CacheIndex, parseCacheKey, type IndexedFile } from '../../src/drivers/nginx/cache-index.ts';
import { CacheScanner } from '../../src/drivers/nginx/cache-scanner.ts';

const LEVELS = [1, 2];

function file(key: string, tags: string[] = []): IndexedFile {
  const k = parseCacheKey(key);
  return { path: `/c/${cacheFileName(key)}`, key, host: k?.host ?? '', urlPath: k?.urlPath ?? key, tags, dateSec: 0, variant: false, stamp: '' };
}

const keys = (files: IndexedFile[]) => files.map((f) => f.key).sort();

test('cache keys read back as purge targets name them', () => {
  assert.deepEqual(parseCacheKey('http://a.test/x?y=1'), { scheme: 'http', host: 'a.test', urlPath: '/x?y=1' });
  assert.deepEqual(parseCacheKey('https://a.test/x/../y'), { scheme: 'https', host: 'a.test', urlPath: '/y' });
  // Raw UTF-8 bytes in $request_uri (latin1 string: one char per byte) and their percent-encoded form agree.
  const raw = Buffer.from('http://a.test/é', 'utf8').toString('latin1');
  assert.equal(parseCacheKey(raw)?.urlPath, '/%C3%A9');
  assert.equal(parseCacheKey('http://a.test/%C3%A9')?.urlPath, '/%C3%A9');
  assert.equal(parseCacheKey('http://a.test/a b')?.urlPath, '/a%20b');
  assert.equal(parseCacheKey('GETa.test/x'), undefined);
  assert.equal(parseCacheKey('http:///x'), undefined);
});

test('prefix lookups are string prefixes: /img matches /img, /img/x and /imgs; /img/ does not match /img', () => {
  const ix = new CacheIndex();
  for (const k of ['/img', '/img/', '/img/a.png', '/img/b/c.png', '/imgs/x', '/im', '/other', '/img?x=1']) ix.add(file(`http://a.test${k}`));
  ix.add(file('http://b.test/img/a.png'));
  const p = (prefix: string) => keys(ix.byPrefix('a.test', prefix)).map((k) => k.slice('http://a.test'.length));
  assert.deepEqual(p('/img/'), ['/img/', '/img/a.png', '/img/b/c.png']);
  assert.deepEqual(p('/img'), ['/img', '/img/', '/img/a.png', '/img/b/c.png', '/img?x=1', '/imgs/x']);
  assert.deepEqual(p('/img/b'), ['/img/b/c.png']);
  assert.deepEqual(p('/'), ['/im', '/img', '/img/', '/img/a.png', '/img/b/c.png', '/img?x=1', '/imgs/x', '/other']);
  assert.deepEqual(p('/nope'), []);
  assert.equal(ix.byHost('a.test').length, 8);
  assert.equal(ix.byHost('b.test').length, 1);
});

test('URL lookups find every scheme and raw spelling; tags are per host; remove prunes', () => {
  const ix = new CacheIndex();
  ix.add(file('http://a.test/x', ['t1']));
  ix.add(file('https://a.test/x', ['t1', 't2']));
  ix.add(file('http://a.test/y/../x'));
  ix.add(file('http://b.test/x', ['t1']));
  assert.deepEqual(keys(ix.byUrl('a.test', '/x')), ['http://a.test/x', 'http://a.test/y/../x', 'https://a.test/x']);
  assert.deepEqual(keys(ix.byTag('a.test', 't1')), ['http://a.test/x', 'https://a.test/x']);
  assert.deepEqual(keys(ix.byTag('b.test', 't1')), ['http://b.test/x']);
  for (const f of [...ix.files()]) ix.remove(f.path);
  assert.equal(ix.size, 0);
  assert.deepEqual(ix.hosts(), []);
  assert.deepEqual(ix.byTag('a.test', 't1'), []);
});

/** Sets every directory's mtime an hour back, so that the first sweep does not find them racy. */
function ageDirs(dir: string): void {
  const old = new Date(Date.now() - 3_600_000);
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) ageDirs(join(dir, e.name));
  utimesSync(dir, old, old);
}

function cacheDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-ngx-index-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a cache file where nginx would, by rename from a temp name as nginx does. */
function put(root: string, key: string, headers: Array<[string, string]> = []): string {
  const name = cacheFileName(key);
  const dir = join(root, ...cacheFileDirs(name, LEVELS));
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `${name}.0000000001`);
  writeFileSync(tmp, encodeCacheFile({ key, validSec: 2e9, dateSec: 1.7e9, headers, body: 'x' }));
  renameSync(tmp, join(dir, name));
  return join(dir, name);
}

test('a sweep builds the index, then finds files added, replaced and removed since, without re-reading the rest', async (t) => {
  const root = cacheDir(t);
  for (let i = 0; i < 200; i++) put(root, `http://a.test/p/${i}`, [['cache-tag', i % 2 ? 'odd' : 'even']]);
  writeFileSync(join(root, 'stray'), 'not a cache file');
  ageDirs(root);
  const ix = new CacheIndex();
  const sc = new CacheScanner({ root, levels: LEVELS, index: ix, clock: systemClock });
  const built = await sc.sweep();
  assert.equal(ix.size, 200);
  assert.equal(built.added.length, 200);
  assert.equal(ix.byTag('a.test', 'odd').length, 100);
  // Written after the build (in a directory that may have been read in the same mtime tick).
  const late = put(root, 'http://a.test/late', [['surrogate-key', 'fresh new']]);
  const fresh = put(root, 'http://a.test/other-dir-late');
  unlinkSync(put(root, 'http://a.test/gone'));
  const gone = join(root, ...cacheFileDirs(cacheFileName('http://a.test/p/7'), LEVELS), cacheFileName('http://a.test/p/7'));
  unlinkSync(gone);
  put(root, 'http://a.test/p/8', [['cache-tag', 'replaced']]);
  const s = await sc.sweep();
  assert.ok(ix.get(late) && ix.get(fresh), 'files written after the build are indexed');
  assert.deepEqual(keys(ix.byTag('a.test', 'fresh')), ['http://a.test/late']);
  assert.equal(ix.get(gone), undefined);
  assert.deepEqual(keys(ix.byTag('a.test', 'replaced')), ['http://a.test/p/8']);
  assert.equal(ix.size, 201);
  assert.ok(s.added.length <= 4, `only new and replaced files are read (read ${s.added.length})`);
  assert.ok(s.readDirs < 20, `only changed directories are listed (listed ${s.readDirs})`);
});

test('a whole level directory removed (rm -rf by an operator) drops its files from the index', async (t) => {
  const root = cacheDir(t);
  const p = put(root, 'http://a.test/x');
  put(root, 'http://a.test/y');
  const ix = new CacheIndex();
  const sc = new CacheScanner({ root, levels: LEVELS, index: ix, clock: systemClock });
  await sc.sweep();
  rmSync(join(root, cacheFileDirs(cacheFileName('http://a.test/x'), LEVELS)[0]!), { recursive: true });
  await sc.sweep();
  assert.equal(ix.get(p), undefined);
  assert.equal(ix.size, cacheFileDirs(cacheFileName('http://a.test/x'), LEVELS)[0] === cacheFileDirs(cacheFileName('http://a.test/y'), LEVELS)[0] ? 0 : 1);
});
