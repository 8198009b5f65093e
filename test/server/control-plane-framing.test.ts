// HTTP framing at the control plane with raw sockets (issue 7): smuggling shapes, pipelining,
// request-target forms, CONNECT and odd methods. Every answer that reaches an API is in its envelope.
import assert from 'node:assert/strict';
import test from 'node:test';
import { signTc3Request } from '../../src/protocols/tc3/tc3-signature.ts';
import { rawExchange } from '../helpers/raw-http.ts';
import { ACME, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { config, TEO } from '../api3/fixtures.ts';

/** A signed API 3.0 request as raw bytes, with the request target given. */
function signed(s: TestServer, body: Record<string, unknown>, target = '/', action = 'DescribeContentQuota'): string {
  const text = JSON.stringify(body);
  const headers = signTc3Request({
    secretId: ACME.secretId, secretKey: ACME.secretKey, host: s.endpoint, service: 'teo', action, version: TEO,
    timestamp: Math.floor(Date.now() / 1000), body: text, method: 'POST', contentType: 'application/json',
  });
  const lines = Object.entries({ ...headers, Host: s.endpoint, 'Content-Length': String(Buffer.byteLength(text)) }).map(([k, v]) => `${k}: ${v}\r\n`);
  return `POST ${target} HTTP/1.1\r\n${lines.join('')}\r\n${text}`;
}

const code = (body: string): string => {
  const r = JSON.parse(body) as { Response?: { Error?: { Code: string } }; code?: number };
  return r.Response ? (r.Response.Error?.Code ?? 'ok') : String(r.code);
};

test('pipelined API calls are answered in order, each in its envelope', async (t) => {
  const s = await startControlPlane(t, config());
  const r = await rawExchange(s.port, [signed(s, { ZoneId: ACME.zoneId }) + signed(s, { ZoneId: 'zone-nosuch' }) + signed(s, { ZoneId: ACME.zoneId })], { expect: 3 });
  assert.deepEqual(r.responses.map((x) => x.status), [200, 200, 200]);
  const codes = r.responses.map((x) => code(x.body));
  assert.equal(codes[0], 'ok');
  assert.match(codes[1] ?? '', /^(ResourceNotFound|InvalidParameter)/);
  assert.equal(codes[2], 'ok');
});

test('Content-Length with Transfer-Encoding, conflicting lengths and bare LF framing are refused with 400 and the connection closed; nothing is written', async (t) => {
  const s = await startControlPlane(t, config());
  const good = signed(s, { ZoneId: ACME.zoneId, Type: 'purge_host', Targets: [ACME.host] }, '/', 'CreatePurgeTask');
  const [head, body] = good.split('\r\n\r\n') as [string, string];
  const shapes = [
    `${head}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
    `${head.replace(/Content-Length: \d+/, 'Transfer-Encoding: chunked')}\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
    `${head}\r\nContent-Length: 1\r\n\r\n${body}`,
    `${head.replace(/Content-Length: \d+/, 'Transfer-Encoding: gzip')}\r\n\r\n${body}`,
    `${head.replaceAll('\r\n', '\n')}\n\n${body}`,
  ];
  for (const shape of shapes) {
    const r = await rawExchange(s.port, [shape], { expect: 2, timeoutMs: 2000 });
    assert.ok(r.closed, `not closed: ${JSON.stringify(shape.slice(0, 80))}`);
    assert.ok(r.responses.every((x) => x.status === 400), `${JSON.stringify(r.responses)}`);
  }
  assert.equal((await s.store.listTasks({ appId: ACME.appId, offset: 0, limit: 10 })).total, 0);
});

test('absolute-form targets are routed by their path (RFC 9112 §3.2.2); asterisk- and authority-form are refused', async (t) => {
  const s = await startControlPlane(t, config());
  const abs = await rawExchange(s.port, [signed(s, { ZoneId: ACME.zoneId }, `http://${s.endpoint}/`)]);
  assert.equal(code(abs.responses[0]!.body), 'ok');
  const star = await rawExchange(s.port, [`OPTIONS * HTTP/1.1\r\nHost: ${s.endpoint}\r\n\r\n`]);
  assert.equal(star.responses[0]?.status, 404);
  const connect = await rawExchange(s.port, [`CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n`], { timeoutMs: 2000 });
  assert.ok(connect.closed && connect.responses.every((x) => x.status >= 400));
});

test('odd methods get the protocol\'s envelope or a plain 4xx, never a hang or a 5xx', async (t) => {
  const s = await startControlPlane(t, config());
  for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PURGE', 'PROPFIND', 'HEAD']) {
    for (const path of ['/', '/v2/index.php', '/edge/v1/ack', '/admin/v1/jobs/1']) {
      const r = await rawExchange(s.port, [`${method} ${path} HTTP/1.1\r\nHost: ${s.endpoint}\r\nContent-Length: 0\r\n\r\n`], { timeoutMs: 3000, head: [method === 'HEAD'] });
      const status = r.responses[0]?.status;
      assert.ok(status !== undefined && status < 500, `${method} ${path}: ${JSON.stringify(r)}`);
      if (status === 200 && method !== 'HEAD') assert.notEqual(code(r.responses[0]!.body), 'ok', `${method} ${path} succeeded`);
    }
  }
  const unknown = await rawExchange(s.port, [`BREW / HTTP/1.1\r\nHost: ${s.endpoint}\r\n\r\n`]);
  assert.equal(unknown.responses[0]?.status, 400);
});
