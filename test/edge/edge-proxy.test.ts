// The edge proxy end to end: a real origin on port 0, the proxy on port 0, HTTP caching and purges.
import assert from 'node:assert/strict';
import http from 'node:http';
import test from 'node:test';
import { cmd, deferred, etagged, heldRoute, request, sleep, startEdge, startOrigin } from './helpers.ts';

const A = 'a.test';

test('MISS then HIT, one origin fetch, Age grows with the injected clock', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/a', etagged('hello', '"v1"', { 'cache-control': 'max-age=60' }));
  const { port, clock, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
  const r1 = await request(port, A, '/a');
  assert.equal(r1.headers['x-cache'], 'MISS');
  assert.equal(r1.body, 'hello');
  clock.advance(7_000);
  const r2 = await request(port, 'A.TEST:8080', '/a');
  assert.equal(r2.headers['x-cache'], 'HIT');
  assert.equal(r2.body, 'hello');
  assert.equal(r2.headers.age, '7');
  assert.equal(origin.hits('/a').length, 1);
  const s = proxy.stats();
  assert.deepEqual([s.hits, s.misses, s.objects], [1, 1, 1]);
});

test('HEAD is answered from a stored GET; a matching If-None-Match gets 304 on a hit', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/a', etagged('hello', '"v1"', { 'cache-control': 'max-age=60' }));
  const { port } = await startEdge(t, [{ host: A, origin: origin.url }]);
  await request(port, A, '/a');
  const head = await request(port, A, '/a', {}, 'HEAD');
  assert.deepEqual([head.status, head.headers['x-cache'], head.headers['content-length'], head.body], [200, 'HIT', '5', '']);
  const cond = await request(port, A, '/a', { 'if-none-match': '"v1"' });
  assert.deepEqual([cond.status, cond.headers['x-cache'], cond.body], [304, 'HIT', '']);
  assert.equal(origin.hits('/a').length, 1);
});

test('Vary: each variant is stored and served separately', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/v', (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
    res.end(`lang=${req.headers['accept-language'] ?? 'none'}`);
  });
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
  const en1 = await request(port, A, '/v', { 'accept-language': 'en' });
  const fr1 = await request(port, A, '/v', { 'accept-language': 'fr' });
  const en2 = await request(port, A, '/v', { 'accept-language': 'en' });
  const fr2 = await request(port, A, '/v', { 'accept-language': 'fr' });
  assert.deepEqual([en1.headers['x-cache'], fr1.headers['x-cache'], en2.headers['x-cache'], fr2.headers['x-cache']], ['MISS', 'MISS', 'HIT', 'HIT']);
  assert.deepEqual([en2.body, fr2.body], ['lang=en', 'lang=fr']);
  assert.equal(proxy.stats().objects, 2);
  // purge_url takes every variant of the key.
  assert.deepEqual(proxy.apply(cmd('purge_url', 'delete', 'http://a.test/v', [A])), { executedAs: 'delete', matched: 2 });
  assert.equal(proxy.stats().objects, 0);
});

for (const [name, headers] of [
  ['no-store', { 'cache-control': 'no-store' }],
  ['private', { 'cache-control': 'private, max-age=60' }],
  ['Set-Cookie', { 'cache-control': 'max-age=60', 'set-cookie': 'sid=secret' }],
  ['Vary: *', { 'cache-control': 'max-age=60', vary: '*' }],
] as const) {
  test(`${name} responses are not stored by the shared cache`, async (t) => {
    const origin = await startOrigin(t);
    origin.routes.set('/p', (_req, res) => {
      res.writeHead(200, headers);
      res.end('personal');
    });
    const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
    const r1 = await request(port, A, '/p');
    const r2 = await request(port, A, '/p');
    assert.deepEqual([r1.headers['x-cache'], r2.headers['x-cache']], ['MISS', 'MISS']);
    assert.equal(r2.body, 'personal');
    assert.equal(origin.hits('/p').length, 2);
    assert.equal(proxy.stats().objects, 0);
  });
}

test('expired object is revalidated: the origin sees If-None-Match, a 304 keeps the body and refreshes headers', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/r', etagged('stored body', '"e1"', { 'cache-control': 'max-age=10', 'x-rev': '1' }));
  const { port, clock } = await startEdge(t, [{ host: A, origin: origin.url }]);
  await request(port, A, '/r');
  clock.advance(11_000);
  origin.routes.set('/r', etagged('NEW BODY', '"e1"', { 'cache-control': 'max-age=10', 'x-rev': '2' }));
  const r = await request(port, A, '/r');
  assert.equal(r.headers['x-cache'], 'REVALIDATED');
  assert.equal(r.body, 'stored body', 'a 304 keeps the stored body');
  assert.equal(r.headers['x-rev'], '2', 'headers come from the 304');
  assert.equal(origin.hits('/r').at(-1)?.headers['if-none-match'], '"e1"');
  const again = await request(port, A, '/r');
  assert.equal(again.headers['x-cache'], 'HIT');
});

test('revalidation answered with 200 replaces the stored body', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/r', etagged('old', '"e1"', { 'cache-control': 'max-age=10' }));
  const { port, clock } = await startEdge(t, [{ host: A, origin: origin.url }]);
  await request(port, A, '/r');
  clock.advance(11_000);
  origin.routes.set('/r', etagged('new', '"e2"', { 'cache-control': 'max-age=10' }));
  const r = await request(port, A, '/r');
  assert.deepEqual([r.headers['x-cache'], r.body], ['MISS', 'new']);
  const again = await request(port, A, '/r');
  assert.deepEqual([again.headers['x-cache'], again.body], ['HIT', 'new']);
});

test('Last-Modified validators are revalidated with If-Modified-Since', async (t) => {
  const origin = await startOrigin(t);
  const lm = 'Wed, 31 Dec 2025 00:00:00 GMT';
  origin.routes.set('/lm', (req, res) => {
    if (req.headers['if-modified-since'] === lm) {
      res.writeHead(304, { 'last-modified': lm });
      res.end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=5', 'last-modified': lm });
    res.end('dated');
  });
  const { port, clock } = await startEdge(t, [{ host: A, origin: origin.url }]);
  await request(port, A, '/lm');
  clock.advance(6_000);
  const r = await request(port, A, '/lm');
  assert.deepEqual([r.headers['x-cache'], r.body], ['REVALIDATED', 'dated']);
  assert.equal(origin.hits('/lm').at(-1)?.headers['if-modified-since'], lm);
});

/** Purge matrix: each purge type, with a target that hits /in/page (tag `t-in`) and misses /out/page. */
const PURGES = [
  { type: 'purge_url', target: 'http://a.test/in/page', hosts: [A] },
  { type: 'purge_prefix', target: 'http://a.test/in/', hosts: [A] },
  { type: 'purge_host', target: A, hosts: [A] },
  { type: 'purge_all', target: '', hosts: [A] },
  { type: 'purge_cache_tag', target: 't-in', hosts: [A] },
] as const;
/** Host-wide purges cannot spare /out/page on the same host: they are checked against b.test instead. */
const HOST_WIDE = new Set(['purge_host', 'purge_all']);

for (const p of PURGES) {
  for (const method of ['invalidate', 'delete'] as const) {
    test(`${p.type} ${method}: the purged object is ${method === 'delete' ? 'refetched' : 'revalidated'}, others stay cached`, async (t) => {
      const origin = await startOrigin(t);
      origin.routes.set('/in/page', etagged('in-body', '"in1"', { 'cache-control': 'max-age=600', 'cache-tag': 't-in, shared' }));
      origin.routes.set('/out/page', etagged('out-body', '"out1"', { 'cache-control': 'max-age=600', 'surrogate-key': 't-out shared2' }));
      const { port, proxy } = await startEdge(t, [
        { host: A, origin: origin.url },
        { host: 'b.test', origin: origin.url },
      ]);
      for (const host of [A, 'b.test']) for (const path of ['/in/page', '/out/page']) await request(port, host, path);
      assert.equal((await request(port, A, '/in/page')).headers['x-cache'], 'HIT');
      const before = origin.hits('/in/page').length;

      const result = proxy.apply(cmd(p.type, method, p.target, p.hosts));
      assert.deepEqual(result, p.type === 'purge_url' ? { executedAs: method, matched: 1 } : { executedAs: method });

      const r = await request(port, A, '/in/page');
      assert.equal(r.body, 'in-body');
      const sent = origin.hits('/in/page').slice(before);
      assert.equal(sent.length, 1, 'the purged object went back to the origin');
      if (method === 'invalidate') {
        assert.equal(r.headers['x-cache'], 'REVALIDATED');
        assert.equal(sent[0]?.headers['if-none-match'], '"in1"', 'conditional request');
      } else {
        assert.equal(r.headers['x-cache'], 'MISS');
        assert.equal(sent[0]?.headers['if-none-match'], undefined, 'unconditional: the object was dropped');
      }
      assert.equal((await request(port, A, '/in/page')).headers['x-cache'], 'HIT', 'cached again afterwards');

      const spared = HOST_WIDE.has(p.type) ? ['b.test'] : [A, 'b.test'];
      for (const host of spared) {
        const o = await request(port, host, '/out/page');
        assert.equal(o.headers['x-cache'], 'HIT', `${host}/out/page stays cached`);
      }
      if (!HOST_WIDE.has(p.type)) assert.equal((await request(port, 'b.test', '/in/page')).headers['x-cache'], 'HIT', 'other host untouched');
      assert.equal(r.headers['cache-tag'], undefined, 'tags are not passed to clients');
    });
  }
}

test('prefix purge: a directory prefix spares siblings; a prefix without slash is a string prefix', async (t) => {
  const origin = await startOrigin(t);
  for (const p of ['/dir/a', '/dir/sub/b', '/dirx', '/dir', '/other/dir/a']) origin.routes.set(p, etagged(p, `"${p}"`, { 'cache-control': 'max-age=600' }));
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
  const state = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const p of ['/dir/a', '/dir/sub/b', '/dirx', '/dir', '/other/dir/a']) out.push(String((await request(port, A, p)).headers['x-cache']));
    return out;
  };
  await state();
  proxy.apply(cmd('purge_prefix', 'delete', 'http://a.test/dir/', [A]));
  assert.deepEqual(await state(), ['MISS', 'MISS', 'HIT', 'HIT', 'HIT']);
  proxy.apply(cmd('purge_prefix', 'delete', 'http://a.test/dir', [A]));
  assert.deepEqual(await state(), ['MISS', 'MISS', 'MISS', 'MISS', 'HIT']);
});

test('a purge applied while the origin fetch is in flight still affects the stored object', async (t) => {
  const origin = await startOrigin(t);
  const slow = heldRoute({ 'cache-control': 'max-age=600', etag: '"s1"' }, 'slow body');
  origin.routes.set('/slow', slow.route);
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
  const pending = request(port, A, '/slow');
  await slow.arrived;
  proxy.apply(cmd('purge_prefix', 'invalidate', 'http://a.test/', [A]));
  slow.release();
  assert.equal((await pending).headers['x-cache'], 'MISS');
  origin.routes.set('/slow', etagged('slow body', '"s1"', { 'cache-control': 'max-age=600' }));
  const r = await request(port, A, '/slow');
  assert.equal(r.headers['x-cache'], 'REVALIDATED', 'stamped before the purge, so it is affected');
});

test('stale lease: no hits, every would-be hit is revalidated; renewing restores hits', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/l', etagged('leased', '"l1"', { 'cache-control': 'max-age=3600' }));
  const { port, clock, proxy } = await startEdge(t, [{ host: A, origin: origin.url }], { leaseMs: 5_000 });
  await request(port, A, '/l');
  assert.equal((await request(port, A, '/l')).headers['x-cache'], 'HIT');
  clock.advance(5_001);
  assert.equal(proxy.leaseFresh(), false);
  const r = await request(port, A, '/l');
  assert.deepEqual([r.headers['x-cache'], r.body], ['REVALIDATED', 'leased']);
  assert.equal(origin.hits('/l').at(-1)?.headers['if-none-match'], '"l1"');
  proxy.renewLease();
  assert.equal((await request(port, A, '/l')).headers['x-cache'], 'HIT');
});

test('a node that never got a lease serves no hits', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/l', etagged('x', '"l1"', { 'cache-control': 'max-age=3600' }));
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
  proxy.renewLease(Number.NEGATIVE_INFINITY);
  await request(port, A, '/l');
  assert.equal((await request(port, A, '/l')).headers['x-cache'], 'REVALIDATED');
  assert.equal(proxy.stats().hits, 0);
});

test('dropAll empties the cache', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/d', etagged('x', '"d1"', { 'cache-control': 'max-age=3600' }));
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
  await request(port, A, '/d');
  assert.equal(proxy.dropAll(), 1);
  assert.equal(proxy.stats().objects, 0);
  const r = await request(port, A, '/d');
  assert.equal(r.headers['x-cache'], 'MISS');
  assert.equal(origin.hits('/d').at(-1)?.headers['if-none-match'], undefined);
});

test('prefetch pulls into the cache with the given headers; origin 404 and network errors fail', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/pre', (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', etag: '"p1"' });
    res.end(`token=${req.headers['x-token'] ?? ''}`);
  });
  const { port, proxy } = await startEdge(t, [
    { host: A, origin: origin.url },
    { host: 'dead.test', origin: 'http://127.0.0.1:1' },
  ]);
  const ok = await proxy.prefetch(cmd('prefetch_url', 'invalidate', 'http://a.test/pre', [A], { 'X-Token': 'abc' }));
  assert.deepEqual(ok, { ok: true, stored: true });
  const r = await request(port, A, '/pre');
  assert.deepEqual([r.headers['x-cache'], r.body], ['HIT', 'token=abc']);
  assert.equal(origin.hits('/pre').length, 1);

  const missing = await proxy.prefetch(cmd('prefetch_url', 'invalidate', 'http://a.test/nope', [A]));
  assert.deepEqual(missing, { ok: false, failType: 'originPullFailed', failMessage: 'origin returned 404' });
  const dead = await proxy.prefetch(cmd('prefetch_url', 'invalidate', 'http://dead.test/x', ['dead.test']));
  assert.equal(dead.ok, false);
  assert.ok(!dead.ok && dead.failType === 'originPullFailed' && dead.failMessage.startsWith('origin unreachable'));
  const foreign = await proxy.prefetch(cmd('prefetch_url', 'invalidate', 'http://nowhere.test/x', []));
  assert.ok(!foreign.ok && foreign.failMessage.includes('no origin configured'));
});

test('LRU eviction by bytes keeps the recently used objects', async (t) => {
  const origin = await startOrigin(t);
  const body = 'x'.repeat(10_000);
  for (const p of ['/1', '/2', '/3', '/4']) origin.routes.set(p, etagged(body, `"${p}"`, { 'cache-control': 'max-age=600' }));
  // Room for three objects (body + headers + overhead), not four.
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }], { maxBytes: 3 * 11_000, maxObjectBytes: 20_000 });
  for (const p of ['/1', '/2', '/3']) await request(port, A, p);
  assert.equal((await request(port, A, '/1')).headers['x-cache'], 'HIT'); // /2 becomes the oldest
  await request(port, A, '/4');
  const s = proxy.stats();
  assert.equal(s.objects, 3);
  assert.ok(s.bytes <= 3 * 11_000);
  assert.equal(s.evictions, 1);
  assert.equal((await request(port, A, '/1')).headers['x-cache'], 'HIT');
  assert.equal((await request(port, A, '/3')).headers['x-cache'], 'HIT');
  assert.equal((await request(port, A, '/2')).headers['x-cache'], 'MISS');
});

test('a 20 MB body over the object cap is streamed through: not buffered, not cached', async (t) => {
  const origin = await startOrigin(t);
  const chunk = Buffer.alloc(1024 * 1024, 97);
  const total = 20;
  const clientHasFirstBytes = deferred();
  let originFinished = false;
  origin.routes.set('/big', async (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'application/octet-stream' });
    res.write(chunk);
    // The rest is only sent once the client holds the first megabyte: a proxy that buffered would deadlock.
    await clientHasFirstBytes.promise;
    for (let i = 1; i < total; i++) {
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
    }
    originFinished = true;
    res.end();
  });
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }], { maxObjectBytes: 4 * 1024 * 1024 });
  const received = await new Promise<{ bytes: number; xcache: string | undefined; earlyWhileOriginBusy: boolean }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/big', headers: { host: A }, agent: false }, (res) => {
      let bytes = 0;
      let early = false;
      res.on('data', (c: Buffer) => {
        if (bytes === 0) {
          early = !originFinished;
          clientHasFirstBytes.resolve();
        }
        bytes += c.length;
      });
      res.on('end', () => resolve({ bytes, xcache: res.headers['x-cache'] as string | undefined, earlyWhileOriginBusy: early }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(received.bytes, total * chunk.length);
  assert.equal(received.earlyWhileOriginBusy, true, 'first bytes reached the client before the origin finished');
  assert.equal(received.xcache, 'MISS');
  assert.equal(proxy.stats().objects, 0);
  assert.ok(proxy.stats().bytes < 1024 * 1024);
  // A cacheable body under the cap is captured while streamed.
  origin.routes.set('/small', etagged('y'.repeat(100_000), '"s"', { 'cache-control': 'max-age=600' }));
  await request(port, A, '/small');
  assert.equal((await request(port, A, '/small')).headers['x-cache'], 'HIT');
});

test('other methods bypass the cache; an unsafe method invalidates its URL (RFC 9111 §4.4)', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/form', (req, res) => {
    if (req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'text/plain' });
        res.end(`got ${body}`);
      });
      return;
    }
    etagged('form', '"f"', { 'cache-control': 'max-age=600' })(req, res);
  });
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
  await request(port, A, '/form');
  const post = await request(port, A, '/form', { 'content-type': 'text/plain' }, 'POST', 'payload');
  assert.deepEqual([post.status, post.headers['x-cache'], post.body], [201, 'BYPASS', 'got payload']);
  assert.equal(proxy.stats().objects, 0);
  assert.equal((await request(port, A, '/form')).headers['x-cache'], 'MISS');
});

test('unknown host gets a short 404; an unreachable origin a 502', async (t) => {
  const { port } = await startEdge(t, [{ host: 'dead.test', origin: 'http://127.0.0.1:1' }]);
  const r = await request(port, 'nope.test', '/');
  assert.equal(r.status, 404);
  assert.match(r.body, /unknown host/);
  assert.equal((await request(port, 'dead.test', '/')).status, 502);
});

test('close() drains the request in flight, refuses new ones, and is idempotent', async (t) => {
  const origin = await startOrigin(t);
  const slow = heldRoute({ 'cache-control': 'max-age=60' }, 'finished');
  origin.routes.set('/slow', slow.route);
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
  const pending = request(port, A, '/slow');
  await slow.arrived;
  const closing = proxy.close();
  assert.equal(proxy.close(), closing);
  await sleep(20);
  await assert.rejects(request(port, A, '/slow'), /ECONNREFUSED/);
  slow.release();
  assert.equal((await pending).body, 'finished');
  await closing;
});

test('maintenance retires rules once the objects they could affect are re-checked', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/keep', etagged('k', '"k"', { 'cache-control': 'max-age=600' }));
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
  await request(port, A, '/keep');
  for (let i = 0; i < 300; i++) proxy.apply(cmd('purge_prefix', 'delete', `http://a.test/old${i}/`, [A]));
  assert.equal(proxy.stats().rules, 300);
  proxy.maintain();
  assert.equal(proxy.stats().rules, 0);
  assert.equal((await request(port, A, '/keep')).headers['x-cache'], 'HIT');
});

test('a body the origin breaks off is not stored', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/cut', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': '1000' });
    res.write('x'.repeat(500));
    setTimeout(() => res.destroy(), 10);
  });
  const { port, proxy } = await startEdge(t, [{ host: A, origin: origin.url }]);
  await assert.rejects(request(port, A, '/cut'));
  await sleep(20);
  assert.equal(proxy.stats().objects, 0);
});
