// Property-based fuzzing of the built-in edge's request handling (src/edge/edge-proxy.ts): raw requests
// with arbitrary methods, request targets, Host headers, header sets and body framings go through a real
// EdgeProxy to a real origin on port 0 that records every request it receives. Properties: the proxy
// answers within a bound and stays usable (a canary request afterwards is answered correctly, on the
// same origin connection pool); the origin never receives a request framed differently from what the
// proxy means to send; the origin's Host is the configured host; nothing is fetched or cached under a
// key other than the one the client asked for.
import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { EdgeProxy } from '../../src/edge/edge-proxy.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { fuzz, nastyString, sendRaw, type RawAnswer } from './fuzz.ts';

const HOSTS = ['www.example.com', 'img.example.com'] as const;

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  body: Buffer;
  complete: boolean;
}

/** One client request as bytes on the wire, and what it means. */
interface ClientRequest {
  readonly method: string;
  readonly target: string;
  readonly hosts: readonly string[];
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly framing: 'none' | 'length' | 'chunked' | 'length-zero' | 'length-and-chunked' | 'length-twice';
  readonly body: string;
  /** Whether the cache holds the target (fetched by a plain GET first), so hits and revalidations are fuzzed too. */
  readonly primed: boolean;
}

/** A complete request hidden in a body: if the origin ever sees it, a body was not framed as one. */
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: www.example.com\r\n\r\n';

const methods = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS') },
  { weight: 1, arbitrary: fc.constantFrom('TRACE', 'PURGE', 'PROPFIND', 'MKCOL', 'LINK', 'SEARCH', 'QUERY', 'get', 'G E T', 'FOO', '') },
);

const pathSegment = fc.oneof(
  fc.constantFrom('a', 'b.txt', '..', '.', '%2e%2e', '%2E', '%2f', '%00', '%', '%zz', 'é', '%C3%A9', ';x', 'a b', '~', '@', ':', '', '\\', 'index.html'),
  fc.string({ unit: fc.constantFrom('a', 'z', '0', '-', '_', '.', '%', '!', '$', '&', "'", '(', '*', '+', ',', '=', ':', '@'), maxLength: 6 }),
);
const originForm = fc
  .tuple(fc.array(pathSegment, { minLength: 1, maxLength: 4 }), fc.option(fc.constantFrom('', 'a=1', 'a=1&b=2', 'a=%zz', '?', 'x=/../', '#'), { nil: undefined }), fc.option(fc.constantFrom('#f', '#'), { nil: undefined }))
  .map(([segs, q, frag]) => `/${segs.join('/')}${q === undefined ? '' : `?${q}`}${frag ?? ''}`);

/** Origin-form targets (`/path?query`), the odd ones included. */
const originTargets = fc.oneof(
  { weight: 6, arbitrary: originForm },
  { weight: 2, arbitrary: fc.constantFrom('/', '//', '//evil.com/x', '///x', '//www.example.com/a', '/a//b', '/./a', '/../a', '/a/..', '/%2F%2Fevil.com', '/\\evil.com', '/?', '/#') },
  { weight: 1, arbitrary: fc.constantFrom('*', 'www.example.com:80', 'a', '', 'http:', '?a', '/a b', '/\u0000', '/\u00ff') },
);

/** Absolute-form targets (`http://host/path`, RFC 9112 §3.2.2), for a configured host or not. */
const absoluteTargets = fc
  .tuple(fc.constantFrom('http://', 'https://', 'HTTP://', 'ftp://'), fc.constantFrom(...HOSTS, 'WWW.EXAMPLE.COM', 'www.example.com:81', 'evil.com', 'www.example.com.', ''), originForm)
  .map(([s, h, p]) => s + h + p);

const targets = fc.oneof({ weight: 4, arbitrary: originTargets }, { weight: 1, arbitrary: absoluteTargets });

const hostHeader = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...HOSTS) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'WWW.EXAMPLE.COM', 'www.example.com.', 'www.example.com:80', 'www.example.com:8080', 'www.example.com:', ' www.example.com', 'www.example.com ',
      'www.example.com:99999', 'www.example.com:abc', 'www.example.com@evil.com', 'evil.com@www.example.com', 'www.example.com/x', 'www.example.com\\x',
      'www.example.com, evil.com', 'www.example.com..', '.www.example.com', 'evil.com', '[::1]', '127.0.0.1', '', 'www.example.com%00', 'www.exámple.com',
    ),
  },
  { weight: 1, arbitrary: nastyString.filter((s) => /^[\t\x20-\x7e]*$/.test(s)) },
);

/** 0 Host lines (HTTP/1.1 requires one), usually 1, sometimes 2. */
const hostLines = fc.oneof({ weight: 12, arbitrary: hostHeader.map((h) => [h]) }, { weight: 1, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: fc.tuple(hostHeader, hostHeader) });

const extraHeader: fc.Arbitrary<readonly [string, string]> = fc.oneof(
  fc.constantFrom<readonly [string, string]>(
    ['Connection', 'keep-alive'], ['Connection', 'x-secret'], ['Connection', 'content-length'], ['Connection', 'host'], ['Connection', 'transfer-encoding'],
    ['X-Secret', 'hop'], ['Keep-Alive', 'timeout=5'], ['Proxy-Connection', 'keep-alive'], ['TE', 'trailers'], ['Trailer', 'X-T'], ['Upgrade', 'websocket'],
    ['Expect', '100-continue'], ['Expect', 'nothing'], ['X-Forwarded-For', '10.0.0.1'], ['X-Forwarded-Host', 'evil.com'], ['Forwarded', 'host=evil.com'],
    ['Cookie', 'a=b'], ['Authorization', 'Basic eDp5'], ['Range', 'bytes=0-1'], ['If-None-Match', '*'], ['If-None-Match', '"nope"'],
    ['If-Modified-Since', 'Thu, 01 Jan 2099 00:00:00 GMT'], ['Cache-Control', 'no-cache'], ['Cache-Control', 'only-if-cached'], ['Cache-Control', 'max-age=0'],
    ['Pragma', 'no-cache'], ['Accept-Encoding', 'gzip'], ['X-HTTP-Method-Override', 'DELETE'], ['Max-Forwards', '0'], ['Via', '1.1 loop'],
    ['Content-Type', 'text/plain'], ['Content-Encoding', 'gzip'], ['x-cache', 'HIT'], ['Cache-Tag', 'all'],
  ),
  fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/), fc.string({ unit: fc.constantFrom('a', ' ', ',', ';', '=', '"', '1'), maxLength: 12 })),
);

const requestWith = (target: fc.Arbitrary<string>, hosts = hostLines): fc.Arbitrary<ClientRequest> => fc.record({
  method: methods,
  target,
  hosts,
  headers: fc.array(extraHeader, { maxLength: 4 }),
  framing: fc.constantFrom('none', 'none', 'none', 'length', 'length', 'chunked', 'length-zero', 'length-and-chunked', 'length-twice'),
  body: fc.oneof(fc.constant(''), fc.string({ maxLength: 30 }), fc.constantFrom(SMUGGLED, `0\r\n\r\n${SMUGGLED}`)),
  primed: fc.boolean(),
});
const SMUGGLED_PATH = '/smuggled';
const clientRequest = requestWith(targets);
const originFormRequest = requestWith(originTargets);
/** Exactly one Host line naming a configured host as configured: only the target varies. */
const plainHostRequest = requestWith(originTargets, fc.constantFrom(...HOSTS).map((h) => [h]));
const absoluteFormRequest = requestWith(absoluteTargets);

/** The request's bytes. `Connection: close` is always among the tokens, so each exchange ends with a close. */
function wire(r: ClientRequest): Buffer {
  const body = Buffer.from(r.body.toWellFormed());
  const lines = [`${r.method} ${r.target} HTTP/1.1`, ...r.hosts.map((h) => `Host: ${h}`)];
  const connection = ['close', ...r.headers.filter(([k]) => k.toLowerCase() === 'connection').map(([, v]) => v)].join(', ');
  for (const [k, v] of r.headers) if (k.toLowerCase() !== 'connection') lines.push(`${k}: ${v}`);
  lines.push(`Connection: ${connection}`);
  let payload = Buffer.alloc(0);
  switch (r.framing) {
    case 'none':
      break;
    case 'length':
      lines.push(`Content-Length: ${body.length}`);
      payload = body;
      break;
    case 'length-zero':
      lines.push('Content-Length: 0');
      break;
    case 'chunked':
      lines.push('Transfer-Encoding: chunked');
      payload = Buffer.concat([body.length > 0 ? Buffer.from(`${body.length.toString(16)}\r\n${body}\r\n`) : Buffer.alloc(0), Buffer.from('0\r\n\r\n')]);
      break;
    case 'length-and-chunked':
      lines.push(`Content-Length: ${body.length + 5}`, 'Transfer-Encoding: chunked');
      payload = Buffer.from(`${body.length > 0 ? `${body.length.toString(16)}\r\n${body}\r\n` : ''}0\r\n\r\n`);
      break;
    case 'length-twice':
      lines.push(`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`);
      payload = body;
      break;
  }
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), payload]);
}

/** The body the client sent, as HTTP frames it (valid framings only). */
function sentBody(r: ClientRequest): string {
  return r.framing === 'length' || r.framing === 'chunked' ? Buffer.from(r.body.toWellFormed()).toString() : '';
}

/** RFC 9112 §3.2 / RFC 3986 §3.2.2: `host [":" port]`, a reg-name or an IP literal. */
const VALID_HOST = /^(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*(?::\d*)?$|^\[[0-9A-Fa-f:.]+\](?::\d*)?$/;

/** A field value as HTTP reads it: without the optional whitespace around it (RFC 9110 §5.5). */
const fieldValue = (v: string): string => v.replace(/^[ \t]+|[ \t]+$/g, '');

/** Exactly one Host line, with a valid value. */
const oneValidHost = (r: ClientRequest): boolean => r.hosts.length === 1 && VALID_HOST.test(fieldValue(r.hosts[0]!));

/** What the client asked for: the configured host its request names and the path, or undefined. */
function asked(r: ClientRequest): { host: string; path: string } | undefined {
  if (!oneValidHost(r)) return undefined;
  // RFC 9112 §3.2.2: an absolute-form target names the host itself; the Host header is then ignored.
  const absolute = /^https?:\/\//i.test(r.target);
  if (!absolute && !r.target.startsWith('/')) return undefined;
  let url: URL;
  try {
    url = absolute ? new URL(r.target) : new URL(`http://${fieldValue(r.hosts[0]!).replace(/:\d*$/, '')}${r.target}`);
  } catch {
    return undefined;
  }
  const host = url.hostname.replace(/\.$/, '');
  if (!(HOSTS as readonly string[]).includes(host)) return undefined;
  return { host, path: url.pathname + url.search };
}

const isValidFraming = (r: ClientRequest) => r.framing !== 'length-and-chunked' && r.framing !== 'length-twice';

describe('edge proxy request handling under fuzzing', () => {
  const clock = new ManualClock(Date.UTC(2026, 2, 1));
  const received: Received[] = [];
  const stored: Array<{ host: string; path: string }> = [];
  const errors: unknown[] = [];
  let origin: http.Server;
  let proxy: EdgeProxy;
  let port = 0;
  let canary = 0;

  before(async () => {
    origin = http.createServer((req, res) => {
      const rec: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0), complete: false };
      received.push(rec);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        rec.body = Buffer.concat(chunks);
        rec.complete = true;
      });
      // Answer at once: a body the proxy announced and never sends must not hold the answer back.
      const body = `${req.method} ${req.url}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600', etag: `"${Buffer.from(body).toString('base64url').slice(0, 40)}"`, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    proxy = new EdgeProxy({
      listen: { host: '127.0.0.1', port: 0 },
      domains: HOSTS.map((host) => ({ host, origin: originUrl })),
      maxBytes: 16 * 1024 * 1024,
      clock,
      leaseMs: 3_600_000,
      maintenanceIntervalMs: 0,
      originTimeoutMs: 1500,
      drainTimeoutMs: 500,
      onError: (e) => errors.push(e),
    });
    // Every object the cache stores, with the key it is stored under.
    const store = proxy.cache.store.bind(proxy.cache);
    proxy.cache.store = (f, o) => {
      stored.push({ host: o.host, path: o.path });
      return store(f, o);
    };
    port = (await proxy.start()).port;
    proxy.renewLease();
  });
  after(async () => {
    await proxy?.close();
    await new Promise<void>((r) => {
      origin.close(() => r());
      origin.closeAllConnections();
    });
  });

  /** Closes the origin's side of every pooled connection and lets the proxy's agent see the FIN before reuse. */
  async function freshOriginConnections(): Promise<void> {
    origin.closeAllConnections();
    await new Promise((r) => setTimeout(r, 5));
  }

  /** Sends one client request; returns the answer, what the origin received and what the cache stored meanwhile. */
  async function exchange(r: ClientRequest): Promise<{ answer: RawAnswer; got: Received[]; keys: Array<{ host: string; path: string }> }> {
    // Each run starts from an empty cache and fresh origin connections, so it does not depend on the
    // runs before it (shrinking replays runs out of order): nothing an earlier run left can leak in.
    proxy.dropAll();
    await freshOriginConnections();
    if (r.primed && r.hosts.length === 1 && r.target.startsWith('/')) {
      await sendRaw(port, `GET ${r.target} HTTP/1.1\r\nHost: ${r.hosts[0]}\r\nConnection: close\r\n\r\n`, 3000);
      await freshOriginConnections();
    }
    errors.length = 0;
    const [r0, s0] = [received.length, stored.length];
    const answer = await sendRaw(port, wire(r), 3000);
    // Bodies still streaming to the origin: give them a moment to finish.
    for (let i = 0; i < 20 && received.slice(r0).some((x) => !x.complete && x.method !== 'GET' && x.method !== 'HEAD'); i++) await new Promise((res) => setTimeout(res, 10));
    return { answer, got: received.slice(r0), keys: stored.slice(s0) };
  }

  const describeReq = (r: ClientRequest) => JSON.stringify(wire(r).toString('latin1'));

  test('the proxy answers every request within 3 s (or closes), never with a 5xx, and stays usable: a canary afterwards reaches the origin intact', async () => {
    await fuzz(
      'edge liveness and canary',
      fc.asyncProperty(clientRequest, async (r) => {
        const { answer, got } = await exchange(r);
        assert.ok(answer.closed, `no answer within 3 s to ${describeReq(r)}`);
        assert.ok(got.length <= 1 && !got.some((x) => x.url.includes(SMUGGLED_PATH)), `one client request became ${JSON.stringify(got.map((x) => `${x.method} ${x.url}`))} at the origin: ${describeReq(r)}`);
        assert.ok(answer.status < 500, `HTTP ${answer.status} to ${describeReq(r)}: ${answer.bytes.toString('latin1').slice(0, 200)} (proxy errors: ${errors.map(String).join('; ')})`);
        // The canary shares the proxy's origin connection pool with the request before it.
        const path = `/canary-${++canary}`;
        const c0 = received.length;
        const c = await sendRaw(port, `GET ${path} HTTP/1.1\r\nHost: ${HOSTS[0]}\r\nConnection: close\r\n\r\n`, 3000);
        assert.equal(c.status, 200, `canary after ${describeReq(r)}: ${c.bytes.toString('latin1').slice(0, 200)}`);
        assert.ok(c.bytes.toString('latin1').endsWith(`\r\n\r\nGET ${path}`), `canary answered with another body after ${describeReq(r)}: ${c.bytes.toString('latin1').slice(-200)}`);
        assert.deepEqual(received.slice(c0).map((x) => `${x.method} ${x.url}`), [`GET ${path}`], `the origin saw something else for the canary after ${describeReq(r)}`);
      }),
      40,
    );
  });

  /** What the origin received must be framed as the proxy means it: no body on GET/HEAD, the client's body otherwise. */
  function assertFraming(r: ClientRequest, got: readonly Received[]): void {
    assert.ok(!got.some((x) => x.url.includes(SMUGGLED_PATH)), `a request hidden in the body reached the origin: ${describeReq(r)}`);
    for (const x of got) {
      if (x.method === 'GET' || x.method === 'HEAD') {
        assert.equal(x.headers['transfer-encoding'], undefined, `${x.method} forwarded with Transfer-Encoding for ${describeReq(r)}`);
        assert.ok(x.headers['content-length'] === undefined || x.headers['content-length'] === '0', `${x.method} forwarded with Content-Length ${x.headers['content-length']} and no body for ${describeReq(r)}`);
      } else {
        assert.ok(x.complete, `the origin never got the whole ${x.method} body for ${describeReq(r)}`);
        assert.equal(x.body.toString(), sentBody(r), `${x.method} body changed on the way for ${describeReq(r)}`);
      }
    }
    // An ambiguous framing (RFC 9112 §6.3: Content-Length with Transfer-Encoding, two lengths) is refused, not forwarded.
    if (!isValidFraming(r)) assert.deepEqual(got.map((x) => x.url), [], `ambiguous framing forwarded: ${describeReq(r)}`);
  }

  test('framing towards the origin: a GET or HEAD, whatever body the client framed, reaches it with no Content-Length or Transfer-Encoding', async () => {
    await fuzz(
      'edge origin framing GET/HEAD',
      fc.asyncProperty(requestWith(targets).map((r) => ({ ...r, method: r.method.length % 2 === 0 ? 'HEAD' : 'GET' })), async (r) => {
        assertFraming(r, (await exchange(r)).got);
      }),
      40,
    );
  });

  test('framing towards the origin: any other method reaches it with exactly the body the client sent, framed so it ends where it ends', async () => {
    await fuzz(
      'edge origin framing with bodies',
      fc.asyncProperty(requestWith(targets).filter((r) => r.method !== 'GET' && r.method !== 'HEAD'), async (r) => {
        assertFraming(r, (await exchange(r)).got);
      }),
      40,
    );
  });

  test('the origin\'s Host is the configured host, once; a request with no, several or an invalid Host is never forwarded', async () => {
    await fuzz(
      'edge origin host',
      fc.asyncProperty(originFormRequest, async (r) => {
        const { got } = await exchange(r);
        const want = asked(r);
        if (!oneValidHost(r)) assert.deepEqual(got.map((x) => x.url), [], `forwarded with Host lines ${JSON.stringify(r.hosts)}: ${describeReq(r)}`);
        for (const x of got) {
          assert.equal(x.rawHeaders.filter((_, i) => i % 2 === 0 && x.rawHeaders[i]!.toLowerCase() === 'host').length, 1, `Host lines to origin: ${JSON.stringify(x.rawHeaders)}`);
          assert.ok(want !== undefined, `forwarded although no configured host was asked for: ${describeReq(r)}`);
          assert.equal(x.headers.host, want.host, `origin got Host ${JSON.stringify(x.headers.host)} for ${describeReq(r)}`);
        }
      }),
      40,
    );
  });

  test('nothing is fetched from the origin or cached under a key other than the one the client asked for', async () => {
    await fuzz(
      'edge cache key',
      fc.asyncProperty(plainHostRequest, async (r) => {
        const { got, keys } = await exchange(r);
        const want = asked(r);
        for (const x of got) {
          assert.ok(want !== undefined, `fetched ${x.url} although the request names no configured host and path: ${describeReq(r)}`);
          assert.equal(x.url, want.path, `the origin was asked for ${x.url}, the client for ${want.path}: ${describeReq(r)}`);
        }
        for (const k of keys) {
          assert.ok(want !== undefined, `stored ${k.host}${k.path} for a request that names no configured host and path: ${describeReq(r)}`);
          assert.deepEqual(k, want, `stored under ${k.host}${k.path}, asked for ${want.host}${want.path}: ${describeReq(r)}`);
        }
      }),
      40,
    );
  });

  test('an absolute-form target decides the host (RFC 9112 §3.2.2): fetched and cached only for a configured one, under its key', async () => {
    await fuzz(
      'edge absolute-form',
      fc.asyncProperty(absoluteFormRequest, async (r) => {
        const { got, keys } = await exchange(r);
        const want = asked(r);
        for (const x of got) {
          assert.ok(want !== undefined, `fetched ${x.headers.host ?? ''}${x.url} for a target naming another host: ${describeReq(r)}`);
          assert.equal(x.headers.host, want.host, `origin got Host ${JSON.stringify(x.headers.host)} for ${describeReq(r)}`);
          assert.equal(x.url, want.path, `the origin was asked for ${x.url}, the client for ${want.path}: ${describeReq(r)}`);
        }
        for (const k of keys) assert.deepEqual(k, want, `stored under ${k.host}${k.path} for ${describeReq(r)}`);
      }),
      40,
    );
  });
});
