// HTTP framing at the edge, with raw sockets against a real keep-alive origin: request smuggling shapes,
// pipelining, request-target forms, CONNECT and odd methods (issue 7).
import assert from 'node:assert/strict';
import test, { type TestContext } from 'node:test';
import { rawExchange } from '../helpers/raw-http.ts';
import { request, startEdge, startOrigin, type TestOrigin } from './helpers.ts';

const HOST = 'www.x.test';

/** An origin with a few cacheable pages, each answering its own path; /echo-host reflects the Host header. */
async function site(t: TestContext): Promise<{ origin: TestOrigin; port: number }> {
  const origin = await startOrigin(t);
  for (const p of ['/first', '/index.html', '/secret', '/a', '/b', '/c']) {
    origin.routes.set(p, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
      res.end(`page ${p}`);
    });
  }
  origin.routes.set('/echo-host', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
    res.end(`host=${req.headers.host ?? ''}`);
  });
  origin.routes.set('/upload', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`got ${Buffer.concat(chunks).toString()}`);
    });
  });
  const { port } = await startEdge(t, [{ host: HOST, origin: origin.url }]);
  return { origin, port };
}

/** No origin request may carry framing the edge did not send a body for. */
function assertNoBodyFraming(origin: TestOrigin): void {
  for (const r of origin.seen) {
    if (r.method === 'GET' || r.method === 'HEAD') {
      assert.equal(r.headers['content-length'], undefined, `${r.method} ${r.url} reached the origin with a Content-Length`);
      assert.equal(r.headers['transfer-encoding'], undefined, `${r.method} ${r.url} reached the origin with a Transfer-Encoding`);
    }
  }
}

test('regression: a GET with a Content-Length body cannot smuggle a request to the origin and poison the cache', async (t) => {
  const { origin, port } = await site(t);
  const body = 'x'.repeat(33);
  // The adversarial run's shape: a body on a GET, then a request whose header looks like a request line.
  const attack = await rawExchange(
    port,
    [
      `GET /first HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 33\r\n\r\n${body}`,
      `GET /index.html HTTP/1.1\r\nHost: ${HOST}\r\nX-Pad: GET /secret HTTP/1.1\r\n\r\n`,
    ],
    { expect: 2, gapMs: 50 },
  );
  assert.deepEqual(attack.responses.map((r) => [r.status, r.body]), [[200, 'page /first'], [200, 'page /index.html']]);
  for (let i = 0; i < 10; i++) {
    const r = await request(port, HOST, '/index.html');
    assert.equal(r.body, 'page /index.html', `try ${i}: /index.html answered with ${r.body}`);
    assert.equal(r.headers['x-cache'], 'HIT');
  }
  assert.deepEqual(origin.seen.map((r) => r.url), ['/first', '/index.html']);
  assertNoBodyFraming(origin);
});

test('a chunked body on a GET is dropped: the origin sees a bodyless GET and the next pipelined request is intact', async (t) => {
  const { origin, port } = await site(t);
  const smuggled = `GET /secret HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
  const chunk = Buffer.byteLength(smuggled).toString(16);
  const r = await rawExchange(
    port,
    [`GET /a HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}\r\n${smuggled}\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
    { expect: 2 },
  );
  assert.deepEqual(r.responses.map((x) => x.body), ['page /a', 'page /b']);
  assert.deepEqual(origin.seen.map((x) => x.url), ['/a', '/b']);
  assertNoBodyFraming(origin);
});

test('Content-Length with Transfer-Encoding, or two different Content-Lengths, are refused with 400 and the connection closed', async (t) => {
  const { origin, port } = await site(t);
  const shapes = [
    `GET /a HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /secret HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    `POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`,
    `GET /a HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET /secret HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    `GET /a HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: identity\r\n\r\n`,
    `GET /a HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
    `GET /a HTTP/1.1\r\nHost: ${HOST}\r\nX-Folded: a\r\n Transfer-Encoding: chunked\r\n\r\n`,
    `GET /a HTTP/1.1\nHost: ${HOST}\nContent-Length: 5\n\nGET /secret HTTP/1.1\r\n\r\n`,
  ];
  for (const shape of shapes) {
    const r = await rawExchange(port, [shape], { expect: 2, timeoutMs: 2000 });
    const statuses = r.responses.map((x) => x.status);
    assert.ok(r.closed, `not closed after ${JSON.stringify(shape)}`);
    assert.ok(statuses.length <= 1 && statuses.every((s) => s === 400), `${JSON.stringify(shape)} answered ${statuses.join(',')}`);
  }
  assert.equal(origin.hits('/secret').length, 0);
  assertNoBodyFraming(origin);
});

test('a relayed request body keeps its framing: Content-Length and chunked uploads reach the origin whole, the next request stays separate', async (t) => {
  const { origin, port } = await site(t);
  const inner = `GET /secret HTTP/1.1\r\nHost: x\r\n\r\n`;
  const r = await rawExchange(
    port,
    [
      `POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 5\r\n\r\nhello` +
        `DELETE /upload HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nworld\r\n0\r\n\r\n` +
        `OPTIONS /upload HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n${Buffer.byteLength(inner).toString(16)}\r\n${inner}\r\n0\r\n\r\n` +
        `GET /c HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    ],
    { expect: 4 },
  );
  assert.deepEqual(
    r.responses.map((x) => x.body),
    ['got hello', 'got world', `got ${inner}`, 'page /c'],
  );
  assert.deepEqual(origin.seen.map((x) => `${x.method} ${x.url}`), ['POST /upload', 'DELETE /upload', 'OPTIONS /upload', 'GET /c']);
});

test('pipelined requests are answered in order, each from its own key', async (t) => {
  const { port } = await site(t);
  const line = (p: string, m = 'GET'): string => `${m} ${p} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
  const r = await rawExchange(port, [line('/a') + line('/b') + line('/a', 'HEAD') + line('/c') + line('/a')], {
    expect: 5,
    head: [false, false, true, false, false],
  });
  assert.deepEqual(r.responses.map((x) => [x.status, x.body]), [[200, 'page /a'], [200, 'page /b'], [200, ''], [200, 'page /c'], [200, 'page /a']]);
  // (Pipelined requests run concurrently: the edge does not collapse misses, so /a may miss more than once.)
  const again = await rawExchange(port, [line('/c') + line('/b') + line('/a')], { expect: 3 });
  assert.deepEqual(again.responses.map((x) => [x.body, x.headers['x-cache']]), [['page /c', 'HIT'], ['page /b', 'HIT'], ['page /a', 'HIT']]);
});

test('regression: the origin receives the host the cache key was built from, never the client\'s port or trailing dot', async (t) => {
  const { origin, port } = await site(t);
  for (const h of [`${HOST}:1337`, `${HOST}.`, 'WWW.X.TEST.:80']) {
    const r = await request(port, h, '/echo-host');
    assert.equal(r.body, `host=${HOST}`, `Host ${h}`);
  }
  assert.deepEqual(origin.hits('/echo-host').map((x) => x.headers.host), [HOST]);
});

test('absolute-form targets use their own authority (RFC 9112 §3.2.2); an unknown one is 404 whatever the Host header says', async (t) => {
  const { origin, port } = await site(t);
  const a = await rawExchange(port, [`GET http://${HOST}/echo-host HTTP/1.1\r\nHost: evil.test\r\n\r\n`]);
  assert.equal(a.responses[0]?.body, `host=${HOST}`);
  const b = await rawExchange(port, [`GET http://evil.test/a HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`]);
  assert.equal(b.responses[0]?.status, 404);
  const c = await rawExchange(port, [`GET http://user:pw@${HOST}/a HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`]);
  assert.equal(c.responses[0]?.status, 400);
  // An origin-form path that starts with "//" is a path, not an authority.
  const d = await rawExchange(port, [`GET //evil.test/a HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`]);
  assert.equal(d.responses[0]?.status, 404);
  assert.deepEqual(origin.seen.map((x) => x.url), ['/echo-host', '//evil.test/a']);
});

test('CONNECT, TRACE, asterisk-form and garbage request lines get no origin request and leave the edge serving', async (t) => {
  const { origin, port } = await site(t);
  const shapes: [string, number | 'closed'][] = [
    [`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`, 'closed'],
    [`TRACE /a HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 405],
    [`OPTIONS * HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 400],
    [`GET a HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 400],
    [`GET /a HTTP/9.9\r\nHost: ${HOST}\r\n\r\n`, 400],
    [`G\x00T /a HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 400],
    [`GET /a\x01 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 400],
    [`GET /a HTTP/1.1\r\nHost: ${HOST}\r\nX: a\x00b\r\n\r\n`, 400],
    [`BREW /a HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 400],
    [`GET /a HTTP/1.1\r\nHost: ${HOST}\r\nHost: evil.test\r\n\r\n`, 400],
    [`GET /a HTTP/1.1\r\n\r\n`, 400],
  ];
  for (const [shape, want] of shapes) {
    const r = await rawExchange(port, [shape], { timeoutMs: 2000 });
    if (want === 'closed') assert.ok(r.closed && r.responses.every((x) => x.status >= 400), `${JSON.stringify(shape)}: ${JSON.stringify(r)}`);
    else assert.equal(r.responses[0]?.status, want, JSON.stringify(shape));
  }
  assert.equal(origin.seen.length, 0);
  assert.equal((await request(port, HOST, '/a')).body, 'page /a');
});

test('regression: prefetch headers cannot set the framing of the origin request', async (t) => {
  const { origin } = await site(t);
  const { proxy } = await startEdge(t, [{ host: HOST, origin: origin.url }]);
  const headers = { 'Content-Length': '33', 'Transfer-Encoding': 'chunked', Expect: '100-continue', Host: 'evil.test', 'X-Ok': '1' };
  const r = await proxy.prefetch({ seq: 1, type: 'prefetch_url', method: 'invalidate', target: `http://${HOST}/a`, hosts: [HOST], headers });
  assert.deepEqual(r, { ok: true, stored: true });
  const seen = origin.hits('/a');
  assert.equal(seen.length, 1);
  assert.deepEqual([seen[0]?.headers.host, seen[0]?.headers['x-ok'], seen[0]?.headers.expect], [HOST, '1', undefined]);
  assertNoBodyFraming(origin);
});
