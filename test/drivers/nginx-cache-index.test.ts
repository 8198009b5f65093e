// The nginx cache index and what keeps it current (the sweep, the inotify watcher), on generated cache files in a temp dir.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type TestContext } from 'node:test';
import { systemClock } from '../../src/shared/clock.ts';
import { cacheFileDirs, cacheFileName, encodeCacheFile } from '../../src/drivers/nginx/cache-file.ts';
import { CacheIndex, parseCacheKey, type IndexedFile } from '../../src/drivers/nginx/cache-index.ts';
import { CacheScanner } from '../../src/drivers/nginx/cache-scanner.ts';
import { CacheWatcher } from '../../src/drivers/nginx/cache-watcher.ts';
import { createLogger } from '../../src/shared/logger.ts';

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

// --- the watcher: inotify events instead of a sweep per purge ---

function watched(t: TestContext, root: string, options: { barrierTimeoutMs?: number; maxQueuedEvents?: number } = {}) {
  const log: string[] = [];
  const index = new CacheIndex();
  const scanner = new CacheScanner({ root, levels: LEVELS, index, clock: systemClock });
  const watcher = new CacheWatcher({ root, levels: LEVELS, scanner, logger: createLogger('info', (l) => log.push(l)), ...options });
  t.after(() => watcher.close());
  watcher.start();
  return { index, scanner, watcher, log };
}

test('the watcher indexes files added, replaced and removed (in new level directories too) with no rescan', async (t) => {
  const root = cacheDir(t);
  for (let i = 0; i < 5; i++) put(root, `http://a.test/p/${i}`);
  const { index, scanner, watcher } = watched(t, root);
  await scanner.sweep();
  assert.equal(index.size, 5);
  // Straight after, with no wait: the barrier in sync() is what makes them visible.
  const late = put(root, 'http://a.test/late', [['cache-tag', 'fresh']]);
  put(root, 'http://a.test/p/3', [['cache-tag', 'replaced']]);
  const gone = put(root, 'http://a.test/p/4');
  unlinkSync(gone);
  writeFileSync(join(root, 'stray'), 'not a cache file');
  // Level directories that did not exist when the watches were set up (nginx creates them on demand):
  // new first-level ones, and new second-level ones in an existing first-level one.
  const fresh = { top: 0, leaf: 0 };
  for (let i = 0; fresh.top + fresh.leaf < 6 && i < 10_000; i++) {
    const key = `http://b.test/n/${i}`;
    const [d1, d2] = cacheFileDirs(cacheFileName(key), LEVELS);
    const newTop = !existsSync(join(root, d1!));
    if (newTop ? fresh.top < 3 : !existsSync(join(root, d1!, d2!)) && fresh.leaf < 3) {
      put(root, key);
      fresh[newTop ? 'top' : 'leaf']++;
    }
  }
  const s = await watcher.sync();
  assert.equal(s.rescan, undefined, 'no rescan');
  assert.ok(index.get(late));
  assert.deepEqual(keys(index.byTag('a.test', 'fresh')), ['http://a.test/late']);
  assert.deepEqual(keys(index.byTag('a.test', 'replaced')), ['http://a.test/p/3']);
  assert.equal(index.get(gone), undefined);
  assert.equal(index.byHost('b.test').length, 6);
  assert.equal(index.size, 5 + 1 - 1 + 6);
  // A file in the new directories after their watch was added is an event like any other.
  const inNew = put(root, 'http://b.test/n/0');
  await watcher.sync();
  assert.ok(index.get(inNew));
  assert.equal(watcher.rescans, 0);
});

test('race: every file renamed into the cache before sync() is indexed when it resolves (a writer in another process)', async (t) => {
  const root = cacheDir(t);
  const { index, scanner, watcher } = watched(t, root);
  await scanner.sweep();
  // The writer renames cache files into place as fast as it can and appends each path to a log after
  // its rename returned; whatever the log lists before a sync starts must be in the index after it.
  const logFile = join(root, '..', `${basename(root)}.log`);
  t.after(() => rmSync(logFile, { force: true }));
  const writer = spawn(
    process.execPath,
    ['--input-type=module', '-e', `
      import { appendFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
      import { join } from 'node:path';
      import { cacheFileDirs, cacheFileName, encodeCacheFile } from ${JSON.stringify(new URL('../../src/drivers/nginx/cache-file.ts', import.meta.url).href)};
      const [root, log] = process.argv.slice(1);
      for (let i = 0; i < 1000; i++) {
        const key = 'http://r.test/w/' + i;
        const name = cacheFileName(key);
        const dir = join(root, ...cacheFileDirs(name, [1, 2]));
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, name + '.0000000001'), encodeCacheFile({ key, validSec: 2e9, dateSec: 1.7e9, body: 'x' }));
        renameSync(join(dir, name + '.0000000001'), join(dir, name));
        appendFileSync(log, join(dir, name) + '\\n');
      }`, root, logFile],
    { stdio: 'inherit' },
  );
  const exited = new Promise((resolve) => writer.once('exit', resolve));
  let rounds = 0;
  let checked = 0;
  for (let done = false; !done; ) {
    done = writer.exitCode !== null;
    const before = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : [];
    await watcher.sync();
    const missing = before.filter((p) => !index.get(p));
    assert.deepEqual(missing.slice(0, 3), [], `${missing.length} of ${before.length} files renamed before sync() not indexed (round ${rounds})`);
    rounds++;
    checked = before.length;
    await sleep(Math.random() * 5);
  }
  await exited;
  assert.equal(checked, 1000);
  assert.equal(index.size, 1000);
  assert.ok(rounds > 3, `${rounds} syncs raced the writer`);
  assert.equal(watcher.rescans, 0);
});

for (const [how, options] of [
  ['seen as one run of half the queue or more', {}],
  ["seen as the barrier's own event never coming (run counting off)", { maxQueuedEvents: 1e9, barrierTimeoutMs: 300 }],
] as const) {
test(`inotify queue overflow (events dropped, which Node does not report) is ${how}, and ends in a full rescan`, async (t) => {
  const root = cacheDir(t);
  // A watched directory for the flood (a directory made after the watches were set up is only watched
  // once its creation event has been handled, and the loop is blocked below).
  const noise = dirname(put(root, 'http://a.test/before'));
  const { index, scanner, watcher, log } = watched(t, root, options);
  await scanner.sweep();
  // The event loop is blocked while more events are queued than inotify holds (max_queued_events,
  // 16,384 by default): the kernel drops the rest, including those of the cache files written last.
  const queue = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
  for (let i = 0; i < queue / 2 + 1_000; i++) {
    writeFileSync(join(noise, `tmp${i}`), '');
    unlinkSync(join(noise, `tmp${i}`));
  }
  const lastOnes = Array.from({ length: 20 }, (_, i) => put(root, `http://a.test/after-flood/${i}`));
  await watcher.sync();
  assert.equal(watcher.rescans, 1, `events ${watcher.events}; ${log.join('')}`);
  assert.ok(log.some((l) => /full rescan/.test(l) && l.includes('maxQueuedEvents' in options ? 'did not arrive' : 'overflowed')), 'logged with its reason');
  for (const p of lastOnes) assert.ok(index.get(p), `${p} indexed by the rescan`);
  assert.equal(index.size, 21);
  // And back to events afterwards.
  const next = put(root, 'http://a.test/next');
  assert.equal((await watcher.sync()).rescan, undefined);
  assert.ok(index.get(next));
});
}

test('a level directory removed under the watcher ends in a rescan that drops its files', async (t) => {
  const root = cacheDir(t);
  const p = put(root, 'http://a.test/x');
  const { index, scanner, watcher } = watched(t, root);
  await scanner.sweep();
  rmSync(join(root, cacheFileDirs(cacheFileName('http://a.test/x'), LEVELS)[0]!), { recursive: true });
  await watcher.sync();
  assert.equal(index.get(p), undefined);
  assert.equal(watcher.rescans, 1);
});

test('a build with many heads reads them in threads and indexes exactly what a build on one thread does', async (t) => {
  const root = cacheDir(t);
  for (let i = 0; i < 2_500; i++) put(root, `http://a.test/many/${i}`, i % 100 === 0 ? [['cache-tag', 'hundreds']] : []);
  put(root, 'foreign-key-format');
  // A file with a cache file's name that is not one (nginx would not serve it).
  const bogus = dirname(put(root, 'http://a.test/bogus-dir'));
  writeFileSync(join(bogus, 'f'.repeat(32)), 'not a cache file');
  const build = async (readers: number) => {
    const index = new CacheIndex();
    const stats = await new CacheScanner({ root, levels: LEVELS, index, clock: systemClock, readers }).sweep();
    return { index, stats };
  };
  const [one, threaded] = [await build(0), await build(2)];
  assert.equal(threaded.index.size, 2_502);
  assert.deepEqual([threaded.stats.unreadable, threaded.stats.foreignKeys], [1, 1]);
  assert.deepEqual([...threaded.index.files()].sort((a, b) => a.path.localeCompare(b.path)), [...one.index.files()].sort((a, b) => a.path.localeCompare(b.path)));
  assert.equal(threaded.index.byTag('a.test', 'hundreds').length, 25);
});
