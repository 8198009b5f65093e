// The nginx driver against a real nginx + ngx_cache_purge and a recording origin: every purge type ×
// method, tags, Vary, files cached after the index was built, prefetch, dropAll, and the failures.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import net from 'node:net';
import test, { type TestContext } from 'node:test';
import { DriverError, type DriverCommand } from '../../src/drivers/edge-driver.ts';
import { isDead } from '../../src/drivers/nginx/cache-file.ts';
import { NginxDriver } from '../../src/drivers/nginx/nginx-driver.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { nginxMissing, request, sleep, startNginxHarness, type NginxHarness } from './nginx-harness.ts';

const missing = nginxMissing();
if (missing !== undefined && process.env.CI !== 'true') {
  console.warn(`\n*** nginx driver tests SKIPPED: ${missing} ***\n`);
}
/** Skips (loudly) without nginx, except under CI=true where the missing package fails the test. */
function nginxTest(name: string, fn: (t: TestContext) => Promise<void>): void {
  test(name, { skip: missing !== undefined && process.env.CI !== 'true' ? missing : false }, async (t) => {
    if (missing !== undefined) assert.fail(`CI=true but nginx is not usable: ${missing}`);
    await fn(t);
  });
}

let seq = 0;
function cmd(type: DriverCommand['type'], method: DriverCommand['method'], target: string, hosts: string[] = ['a.test'], headers?: Record<string, string>): DriverCommand {
  return { seq: ++seq, type, method, target, hosts, ...(headers ? { headers } : {}) };
}

const A = 'a.test';

/** A deleted file is purged once it is marked dead (nginx answers MISS) or gone; the unlink comes later. */
function deadOrGone(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return true;
  }
  try {
    const b = Buffer.alloc(8);
    readSync(fd, b, 0, 8, 0);
    return isDead(b);
  } finally {
    closeSync(fd);
  }
}
const B = 'b.test';

/** Warms paths (MISS then a HIT with no origin request) so that later HITs prove nothing was refetched. */
async function warm(h: NginxHarness, host: string, paths: string[], headers?: Record<string, string>): Promise<void> {
  for (const p of paths) {
    await h.get(host, p, headers);
    const again = await h.get(host, p, headers);
    assert.equal(again.xcache, 'HIT', `${host}${p} is cached`);
  }
}

async function assertStillCached(h: NginxHarness, host: string, paths: string[]): Promise<void> {
  for (const p of paths) {
    const r = await h.get(host, p);
    assert.deepEqual([r.xcache, r.originHits], ['HIT', 0], `${host}${p} stays cached, no origin request`);
  }
}

async function assertRefetched(h: NginxHarness, host: string, paths: string[]): Promise<void> {
  for (const p of paths) {
    const r = await h.get(host, p);
    assert.deepEqual([r.xcache, r.originHits], ['MISS', 1], `${host}${p} is fetched again`);
    assert.equal(h.origin.hits(host, p).at(-1)?.headers['if-none-match'], undefined, 'an unconditional fetch');
  }
}

/** Revalidated with a conditional request the origin saw (If-None-Match + If-Modified-Since), then a HIT. */
async function assertRevalidated(h: NginxHarness, host: string, paths: string[]): Promise<void> {
  for (const p of paths) {
    const r = await h.get(host, p);
    assert.deepEqual([r.xcache, r.originHits], ['REVALIDATED', 1], `${host}${p} is revalidated`);
    const seen = h.origin.hits(host, p).at(-1);
    assert.equal(seen?.headers['if-none-match'], '"v1"');
    assert.ok(seen?.headers['if-modified-since'], 'If-Modified-Since sent too');
    assert.equal((await h.get(host, p)).xcache, 'HIT', 'fresh again after the 304');
  }
}

// --- every type × method: purged objects refetched (delete) or revalidated (invalidate), the rest HIT ---

interface Case {
  readonly type: DriverCommand['type'];
  readonly target: string;
  readonly hosts?: string[];
  /** [host, path] purged / kept. */
  readonly purged: Array<[string, string]>;
  readonly kept: Array<[string, string]>;
  readonly tags?: Record<string, Record<string, string>>;
}

const CASES: Case[] = [
  { type: 'purge_url', target: 'http://a.test/p/1?x=1', purged: [[A, '/p/1?x=1']], kept: [[A, '/p/1'], [A, '/p/1?x=2'], [B, '/p/1?x=1']] },
  {
    type: 'purge_prefix',
    target: 'http://a.test/img/',
    purged: [[A, '/img/a.png'], [A, '/img/b/c.png'], [A, '/img/']],
    kept: [[A, '/img'], [A, '/imgs/x'], [A, '/other'], [B, '/img/a.png']],
  },
  { type: 'purge_host', target: 'a.test', hosts: [A], purged: [[A, '/x'], [A, '/y/z']], kept: [[B, '/x']] },
  { type: 'purge_all', target: '', hosts: [A], purged: [[A, '/x'], [A, '/y/z']], kept: [[B, '/x']] },
  {
    type: 'purge_cache_tag',
    target: 'news',
    hosts: [A],
    purged: [[A, '/t/cache-tag'], [A, '/t/surrogate']],
    kept: [[A, '/t/none'], [A, '/t/other'], [B, '/t/cache-tag']],
    tags: {
      '/t/cache-tag': { 'cache-tag': 'sport, news' },
      '/t/surrogate': { 'surrogate-key': 'a news z' },
      '/t/other': { 'cache-tag': 'newsletter' },
    },
  },
];

for (const c of CASES) {
  for (const method of ['delete', 'invalidate'] as const) {
    nginxTest(`${c.type} ${method}: purged objects ${method === 'delete' ? 'are fetched again' : 'are revalidated with a conditional request'}, the others stay HITs`, async (t) => {
      const h = await startNginxHarness(t);
      for (const [host, path] of [...c.purged, ...c.kept]) {
        const headers = c.tags?.[path];
        if (headers) h.origin.setHeaders(host, path, headers);
      }
      for (const [host, path] of [...c.purged, ...c.kept]) await warm(h, host, [path]);
      const report = await h.driver.apply(cmd(c.type, method, c.target, c.hosts));
      assert.equal(report.executedAs, method);
      assert.equal(report.matched, c.purged.length);
      // A plain URL goes through the purge module alone (nothing unlinked behind nginx's back).
      if (c.type === 'purge_url' && method === 'delete') assert.equal(report.note, undefined);
      for (const [host, path] of c.purged) {
        if (method === 'delete') await assertRefetched(h, host, [path]);
        else await assertRevalidated(h, host, [path]);
      }
      for (const [host, path] of c.kept) await assertStillCached(h, host, [path]);
    });
  }
}

nginxTest('invalidate: content changed at the origin is served after the revalidation (200, not 304)', async (t) => {
  const h = await startNginxHarness(t);
  await warm(h, A, ['/doc']);
  h.origin.bump(A, '/doc');
  assert.match((await h.get(A, '/doc')).body, /v1$/, 'the cached copy until purged');
  await h.driver.apply(cmd('purge_prefix', 'invalidate', 'http://a.test/'));
  const r = await h.get(A, '/doc');
  assert.deepEqual([r.xcache, r.body], ['EXPIRED', 'a.test/doc v2']);
  assert.equal(h.origin.hits(A, '/doc').at(-1)?.headers['if-none-match'], '"v1"');
});

nginxTest('invalidate as delete when configured so: executedAs delete with a note', async (t) => {
  const h = await startNginxHarness(t, { driver: { invalidate: 'delete' } });
  await warm(h, A, ['/x']);
  const report = await h.driver.apply(cmd('purge_url', 'invalidate', 'http://a.test/x'));
  assert.equal(report.executedAs, 'delete');
  assert.match(report.note ?? '', /invalidate executed as delete/);
  await assertRefetched(h, A, ['/x']);
});

nginxTest('purge_url takes every Vary variant (the module alone purges only the one its own request selects)', async (t) => {
  const h = await startNginxHarness(t);
  h.origin.setHeaders(A, '/v', { vary: 'Accept-Encoding' });
  const encodings = ['gzip', 'br', 'identity'];
  for (const e of encodings) await warm(h, A, ['/v'], { 'accept-encoding': e });
  const report = await h.driver.apply(cmd('purge_url', 'delete', 'http://a.test/v'));
  assert.equal(report.matched, 3);
  assert.match(report.note ?? '', /deleted directly/);
  for (const e of encodings) {
    const r = await h.get(A, '/v', { 'accept-encoding': e });
    assert.deepEqual([r.xcache, r.originHits, r.body], ['MISS', 1, `a.test/v v1 accept-encoding=${e}`]);
  }
});

nginxTest('purge_url matches every raw $request_uri spelling of the URL (dot segments), not a different percent-encoding', async (t) => {
  const h = await startNginxHarness(t);
  await warm(h, A, ['/p/caf%C3%A9', '/d/../p/caf%C3%A9', '/p/./caf%C3%A9', '/p/caf%c3%a9']);
  const report = await h.driver.apply(cmd('purge_url', 'delete', 'http://a.test/p/caf%C3%A9'));
  // The WHATWG serialisation (src/purge targets) resolves dot segments but keeps %c3%a9 as written.
  assert.equal(report.matched, 3);
  await assertRefetched(h, A, ['/p/caf%C3%A9', '/d/../p/caf%C3%A9', '/p/./caf%C3%A9']);
  await assertStillCached(h, A, ['/p/caf%c3%a9']);
});

nginxTest('an unlinked file whose key nginx still holds in its keys_zone is fetched again, never served stale', async (t) => {
  const h = await startNginxHarness(t);
  await warm(h, A, ['/z']);
  h.origin.bump(A, '/z');
  await h.driver.apply(cmd('purge_prefix', 'delete', 'http://a.test/z'));
  const r = await h.get(A, '/z');
  assert.deepEqual([r.xcache, r.body], ['MISS', 'a.test/z v2']);
  assert.deepEqual([(await h.get(A, '/z')).xcache], ['HIT']);
});

nginxTest('open_file_cache on: a deleted file nginx still holds open is fetched again (marked dead in place), never served as a stale HIT', async (t) => {
  const h = await startNginxHarness(t, { location: 'open_file_cache max=100 inactive=60s; open_file_cache_valid 60s;' });
  await warm(h, A, ['/ofc', '/ofc2']);
  h.origin.bump(A, '/ofc2');
  for (const p of ['/ofc', '/ofc2']) assert.equal((await h.get(A, p)).xcache, 'HIT', 'served through the cached descriptor');
  await h.driver.apply(cmd('purge_prefix', 'delete', 'http://a.test/ofc'));
  const same = await h.get(A, '/ofc');
  assert.equal(same.originHits, 1, 'the origin is asked');
  assert.notEqual(same.xcache, 'HIT');
  const changed = await h.get(A, '/ofc2');
  assert.deepEqual([changed.originHits, changed.body], [1, 'a.test/ofc2 v2']);
});

nginxTest('delete marks each file dead before the ack (the next request is a MISS), unlinks it later, and never unlinks a newer copy', async (t) => {
  const h = await startNginxHarness(t, { driver: { unlinkAfterMs: 60_000 } });
  await warm(h, A, ['/dead/a', '/dead/b', '/dead/keep']);
  const [fa, fb] = ['/dead/a', '/dead/b'].map((p) => h.nginx.pathOf(`http://a.test${p}`)) as [string, string];
  const report = await h.driver.apply(cmd('purge_prefix', 'delete', 'http://a.test/dead/'));
  assert.equal(report.matched, 3);
  assert.ok(existsSync(fa) && existsSync(fb) && deadOrGone(fa) && deadOrGone(fb), 'marked dead, still on disk');
  assert.equal(h.driver.pendingUnlinks, 3);
  assert.equal(h.driver.index.byPrefix(A, '/dead/').length, 0, 'out of the index at once');
  // nginx reads the mark: MISS, an unconditional fetch, and a new file under the same name.
  await assertRefetched(h, A, ['/dead/a']);
  assert.match(h.nginx.errorLog(), /version mismatch/);
  const newer = statSync(fa).ino;
  await h.driver.flushUnlinks();
  assert.equal(existsSync(fb), false, 'the dead file is unlinked');
  assert.equal(statSync(fa, { throwIfNoEntry: false })?.ino, newer, 'the copy nginx stored after the purge stays');
  assert.equal((await h.get(A, '/dead/a')).xcache, 'HIT');
  await assertRefetched(h, A, ['/dead/b', '/dead/keep']);
});

nginxTest('without watches, a file cached after the index was built is purged (the purge sweeps first; no background sweep here)', async (t) => {
  const h = await startNginxHarness(t, { driver: { syncIntervalMs: 0, watch: false } });
  assert.equal(h.driver.watcher, undefined);
  const built = h.driver.index.size;
  await warm(h, A, ['/late/1', '/late/2']);
  assert.equal(h.driver.index.size, built, 'the index has not seen them yet');
  for (const [type, target] of [['purge_prefix', 'http://a.test/late/'], ['purge_cache_tag', 'x']] as const) {
    if (type === 'purge_cache_tag') {
      h.origin.setHeaders(A, '/late/3', { 'cache-tag': 'x' });
      await warm(h, A, ['/late/3']);
    }
    const report = await h.driver.apply(cmd(type, 'delete', target));
    assert.equal(report.matched, type === 'purge_prefix' ? 2 : 1);
  }
  await assertRefetched(h, A, ['/late/1', '/late/2', '/late/3']);
});

nginxTest('race: every file nginx has cached when a purge is applied is purged, while clients keep filling the cache', async (t) => {
  const h = await startNginxHarness(t, { driver: { syncIntervalMs: 0 } });
  assert.ok(h.driver.watcher, 'the cache is watched');
  let n = 0;
  let stop = false;
  const requested: string[] = [];
  // Eight clients cache new URLs as fast as nginx stores them (each URL once: nothing refetches a purged one).
  const clients = Array.from({ length: 8 }, async () => {
    while (!stop) {
      const path = `/race/${n++}`;
      requested.push(path);
      await request(h.nginx.port, path, { host: A });
    }
  });
  let raced = 0;
  let purged = 0;
  try {
    for (let round = 0; round < 15; round++) {
      await sleep(20 + Math.random() * 60);
      // What is on disk right now, and at once (no turn of the event loop) the purge.
      const onDisk = requested.map((p) => h.nginx.pathOf(`http://a.test${p}`)).filter((f) => existsSync(f));
      raced += onDisk.filter((f) => !h.driver.index.get(f)).length;
      const applied = h.driver.apply(cmd('purge_prefix', 'delete', 'http://a.test/race/'));
      await applied;
      const escaped = onDisk.filter((f) => !deadOrGone(f));
      assert.deepEqual(escaped, [], `round ${round}: ${escaped.length} of ${onDisk.length} files on disk before the purge survived it`);
      purged += onDisk.length;
    }
  } finally {
    stop = true;
    await Promise.all(clients);
  }
  t.diagnostic(`${purged} files purged in 15 rounds; ${raced} of them were not yet indexed when their purge was applied`);
  assert.ok(purged > 50, `the clients cached ${purged} files`);
  assert.equal(h.driver.watcher?.rescans, 0, 'no rescan needed');
});

nginxTest('inotify overflow while nginx caches: the purge falls back to a full rescan and still purges everything', async (t) => {
  const log: string[] = [];
  // The files cached while this process is blocked come from an origin in another process.
  const other = spawn(process.execPath, ['-e', `
    const s = require('node:http').createServer((q, r) => r.setHeader('cache-control', 'max-age=3600').end('other ' + q.url));
    s.listen(0, '127.0.0.1', () => console.log(s.address().port));`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => other.kill());
  const [otherPort] = (await once(other.stdout!, 'data')) as [Buffer];
  const h = await startNginxHarness(t, {
    location: `if ($uri ~ "^/flood/new") { proxy_pass http://127.0.0.1:${String(otherPort).trim()}; }`,
    driver: { syncIntervalMs: 0, logger: createLogger('info', (l) => log.push(l)) },
  });
  await warm(h, A, ['/flood/0']);
  const dir = dirname(h.nginx.pathOf('http://a.test/flood/0'));
  await h.driver.sync();
  // With the event loop blocked: more events than inotify queues (so the kernel drops events), then
  // nginx caches new files (curl, synchronously) whose events are among the dropped ones.
  const queue = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
  for (let i = 0; i < queue / 2 + 1_000; i++) {
    writeFileSync(join(dir, `noise${i}`), '');
    unlinkSync(join(dir, `noise${i}`));
  }
  const urls = Array.from({ length: 5 }, (_, i) => `http://127.0.0.1:${h.nginx.port}/flood/new${i}`);
  const curl = spawnSync('curl', ['-sf', '-H', 'Host: a.test', ...urls.flatMap((u) => [u, '-o', '/dev/null'])], { timeout: 10_000 });
  assert.equal(curl.status, 0, String(curl.stderr));
  const files = Array.from({ length: 5 }, (_, i) => h.nginx.pathOf(`http://a.test/flood/new${i}`));
  // nginx renames a response's temp file into the cache as it finalises the request, which can be just
  // after curl has read the last byte: on a loaded machine the file lands a moment later (the flake
  // this test once had). Wait for it with the event loop still blocked, so its event stays among the dropped.
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (const end = Date.now() + 10_000; !files.every((f) => existsSync(f)) && Date.now() < end; ) Atomics.wait(pause, 0, 0, 10);
  assert.ok(files.every((f) => existsSync(f)), 'nginx cached them');
  const report = await h.driver.apply(cmd('purge_prefix', 'delete', 'http://a.test/flood/'));
  assert.equal(report.matched, 6);
  assert.ok(files.every((f) => deadOrGone(f)));
  assert.equal(h.driver.watcher?.rescans, 1);
  assert.ok(log.some((l) => /full rescan.*overflowed/.test(l)), 'the rescan is logged with its reason');
});

nginxTest('a response in flight during a purge (head received before it, stored after) is purged when it lands', async (t) => {
  const log: string[] = [];
  const h = await startNginxHarness(t, { driver: { logger: createLogger('info', (line) => log.push(line)) } });
  // The origin sends the head at once and the body 3.5 s later; nginx dates the file by the head.
  const pending = request(h.nginx.port, '/slow', { host: A, 'x-delay-body': '1' });
  await until(() => h.origin.hits(A, '/slow').length === 1);
  await sleep(20);
  await sleep(1_100 - (Date.now() % 1_000)); // into a later second than the head's
  const report = await h.driver.apply(cmd('purge_prefix', 'delete', 'http://a.test/slow'));
  assert.equal(report.matched, 0, 'nothing stored yet');
  assert.match((await pending).body, /v1$/);
  // The background sweep (200 ms) finds the file and applies the purge it escaped.
  await until(() => log.some((l) => l.includes('older than a recent purge')));
  await until(() => !existsSync(h.nginx.pathOf('http://a.test/slow')));
  await assertRefetched(h, A, ['/slow']);
});

async function until(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    assert.ok(Date.now() < end, 'condition not met in time');
    await sleep(20);
  }
}

nginxTest('prefetch: a GET through nginx with the given headers and Host = the URL host; then a HIT', async (t) => {
  const h = await startNginxHarness(t);
  h.origin.setHeaders(A, '/pre', { vary: 'Accept-Language' });
  const out = await h.driver.prefetch(cmd('prefetch_url', 'delete', 'http://a.test/pre', [A], { 'accept-language': 'fr', host: 'evil.test' }));
  assert.deepEqual(out, { ok: true });
  const seen = h.origin.hits(A, '/pre');
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.headers['accept-language'], 'fr');
  const r = await h.get(A, '/pre', { 'accept-language': 'fr' });
  assert.deepEqual([r.xcache, r.originHits, r.body], ['HIT', 0, 'a.test/pre v1 accept-language=fr']);
});

nginxTest('prefetch: origin 4xx/5xx is originPullFailed, not an error', async (t) => {
  const h = await startNginxHarness(t);
  h.origin.setStatus(A, '/missing', 404);
  h.origin.setStatus(A, '/broken', 503);
  for (const p of ['/missing', '/broken']) {
    const out = await h.driver.prefetch(cmd('prefetch_url', 'delete', `http://a.test${p}`));
    assert.equal(out.ok, false);
    assert.equal(!out.ok && out.failType, 'originPullFailed');
  }
  // Headers Node cannot send fail that prefetch alone.
  const bad = await h.driver.prefetch(cmd('prefetch_url', 'delete', 'http://a.test/x', [A], { 'x-bad': 'a\nb' }));
  assert.equal(bad.ok, false);
});

nginxTest('dropAll deletes every cache file and counts them; everything is fetched again', async (t) => {
  const h = await startNginxHarness(t);
  await warm(h, A, ['/1', '/2']);
  await warm(h, B, ['/1']);
  assert.deepEqual(await h.driver.dropAll(), { matched: 3 });
  assert.equal(h.driver.index.size, 0);
  await assertRefetched(h, A, ['/1', '/2']);
  await assertRefetched(h, B, ['/1']);
});

nginxTest('the index is built at start from the files already on disk (after an nginx restart too)', async (t) => {
  const h = await startNginxHarness(t);
  await warm(h, A, ['/1', '/2']);
  await h.restartCache();
  const second = new NginxDriver({ ...h.driverOptions, syncIntervalMs: 0 });
  t.after(() => second.close());
  await second.start();
  assert.deepEqual(second.index.byHost(A).map((f) => f.urlPath).sort(), ['/1', '/2']);
  await assertStillCached(h, A, ['/1', '/2']);
  const report = await second.apply(cmd('purge_url', 'delete', 'http://a.test/1'));
  assert.equal(report.matched, 1);
  await assertRefetched(h, A, ['/1']);
});

// --- failures ---

async function rejectsWith(p: Promise<unknown>, retryable: boolean, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DriverError, `a DriverError, got ${String(err)}`);
    assert.equal(err.retryable, retryable, err.message);
    assert.match(err.message, message);
    return true;
  });
}

nginxTest('nginx down: URL purges, prefetches and start fail with retryable errors', async (t) => {
  const h = await startNginxHarness(t);
  await warm(h, A, ['/x']);
  await h.nginx.stop();
  await rejectsWith(h.driver.apply(cmd('purge_url', 'delete', 'http://a.test/x')), true, /nginx purge .*failed/);
  await rejectsWith(h.driver.prefetch(cmd('prefetch_url', 'delete', 'http://a.test/y')), true, /prefetch through nginx .*failed/);
  const fresh = new NginxDriver(h.driverOptions);
  t.after(() => fresh.close());
  await rejectsWith(fresh.start(), true, /not reachable/);
});

nginxTest('a purge from an address the snippet does not allow is refused: start fails, not retryable, saying how to fix it', async (t) => {
  const h = await startNginxHarness(t);
  const r = await request(h.nginx.purgePort, '/edgepurge/purge', { 'x-edgepurge-key': 'http://a.test/x' }, { localAddress: '127.0.0.2' });
  assert.equal(r.status, 403);
  const outsider = new NginxDriver({ ...h.driverOptions, localAddress: '127.0.0.2' });
  t.after(() => outsider.close());
  await rejectsWith(outsider.start(), false, /403.*allow the agent's address/);
});

nginxTest('with a secret in the snippet, a driver without it is refused and one with it purges', async (t) => {
  const secret = 'test-secret-0123456789';
  const h = await startNginxHarness(t, { snippet: { secret } });
  await warm(h, A, ['/x']);
  const wrong = new NginxDriver({ ...h.driverOptions, secret: 'wrong-secret-0123456789' });
  t.after(() => wrong.close());
  await rejectsWith(wrong.start(), false, /same secret/);
  assert.equal((await h.driver.apply(cmd('purge_url', 'delete', 'http://a.test/x'))).matched, 1);
});

nginxTest('purgeUrl pointing at a server without the snippet: start fails, not retryable, naming edgepurge.conf', async (t) => {
  const h = await startNginxHarness(t);
  const wrong = new NginxDriver({ ...h.driverOptions, purgeUrl: `http://127.0.0.1:${h.nginx.port}` });
  t.after(() => wrong.close());
  await rejectsWith(wrong.start(), false, /include edgepurge\.conf/);
});

test('a purge server that accepts but never answers times out as a retryable error', async (t) => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as net.AddressInfo).port;
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-ngx-timeout-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const d = new NginxDriver({ cacheUrl: `http://127.0.0.1:${port}`, purgeUrl: `http://127.0.0.1:${port}`, cacheDir: dir, timeoutMs: 300 });
  t.after(() => d.close());
  const started = Date.now();
  await rejectsWith(d.start(), true, /timed out after 300 ms/);
  assert.ok(Date.now() - started < 4_000, "bounded by the timeout, not hanging");
});

nginxTest('the cache directory must be readable and writable, and laid out as levels= says', async (t) => {
  const h = await startNginxHarness(t);
  await warm(h, A, ['/x']);
  const missingDir = new NginxDriver({ ...h.driverOptions, cacheDir: `${h.nginx.cacheDir}-nope` });
  await rejectsWith(missingDir.start(), false, /not readable and writable/);
  const wrongLevels = new NginxDriver({ ...h.driverOptions, levels: '2' });
  await rejectsWith(wrongLevels.start(), false, /does not look like levels=2/);
});
