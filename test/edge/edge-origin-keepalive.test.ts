// Edge → origin keep-alive (issue 7, soak): a pooled origin socket the origin closes just as the edge
// reuses it must not turn into a 502, and the edge closes idle origin sockets before the origin does.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import test, { type TestContext } from 'node:test';
import { request, sleep, startEdge } from './helpers.ts';

const HOST = 'www.x.test';

interface KeepAliveOrigin {
  readonly url: string;
  /** Requests received, by method and path. */
  readonly seen: string[];
  /** Connections accepted, and how many of them are still open. */
  connections(): number;
  open(): number;
}

/**
 * A real node origin that keeps connections alive for `keepAliveTimeout` ms without announcing it (an
 * explicit `Connection: keep-alive` stops node sending `Keep-Alive: timeout=N`, as nginx and many origins
 * never send it), so a client cannot know when the origin will close. With `closeReused`, a request that
 * arrives on a connection that already served one has its socket destroyed unanswered: the origin's
 * keep-alive timer fired just as that request was on its way.
 */
async function keepAliveOrigin(t: TestContext, keepAliveTimeout: number, closeReused = false): Promise<KeepAliveOrigin> {
  const seen: string[] = [];
  const served = new WeakSet<Socket>();
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = http.createServer((req, res) => {
    if (closeReused && served.has(req.socket)) return void req.socket.destroy();
    served.add(req.socket);
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.end(`page ${req.url}`);
    });
  });
  server.keepAliveTimeout = keepAliveTimeout;
  server.on('connection', (s: Socket) => {
    accepted++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, connections: () => accepted, open: () => sockets.size };
}

test('regression: a GET on a pooled origin socket the origin closes as the request arrives is sent again once, not answered 502', async (t) => {
  const origin = await keepAliveOrigin(t, 60_000, true);
  const { port } = await startEdge(t, [{ host: HOST, origin: origin.url }]);
  for (let i = 0; i < 5; i++) {
    const r = await request(port, HOST, `/p${i}`);
    assert.deepEqual([r.status, r.body], [200, `page /p${i}`], `request ${i}`);
  }
  // Every other request went out on the pooled socket (closed unanswered), then on a connection of its own.
  assert.deepEqual(origin.seen, ['GET /p0', 'GET /p1', 'GET /p2', 'GET /p3', 'GET /p4']);
  assert.equal(origin.connections(), 5);
});

test('regression: HEAD is retried the same way; a POST on such a socket is not repeated (it may not be idempotent)', async (t) => {
  const origin = await keepAliveOrigin(t, 60_000, true);
  const { port } = await startEdge(t, [{ host: HOST, origin: origin.url }]);
  assert.equal((await request(port, HOST, '/first')).status, 200);
  assert.equal((await request(port, HOST, '/head', {}, 'HEAD')).status, 200);
  assert.equal((await request(port, HOST, '/warm')).status, 200);
  const post = await request(port, HOST, '/form', { 'content-type': 'text/plain' }, 'POST', 'a=1');
  assert.equal(post.status, 502);
  assert.deepEqual(origin.seen, ['GET /first', 'HEAD /head', 'GET /warm']);
});

test('the edge closes an idle origin connection after originKeepAliveMs, before the origin would', async (t) => {
  const origin = await keepAliveOrigin(t, 60_000);
  const { port } = await startEdge(t, [{ host: HOST, origin: origin.url }], { originKeepAliveMs: 200 });
  assert.equal((await request(port, HOST, '/a')).status, 200);
  assert.equal((await request(port, HOST, '/b')).status, 200);
  assert.equal(origin.connections(), 1, 'the second request reused the pooled connection');
  assert.equal(origin.open(), 1);
  const until = Date.now() + 3000;
  while (origin.open() > 0 && Date.now() < until) await sleep(25);
  assert.equal(origin.open(), 0, 'the idle connection is still open 3 s after a 200 ms keep-alive');
});
