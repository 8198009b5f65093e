// Requests over the 64 KiB request-line-and-headers limit are refused by Node's parser before any
// handler runs; the answer must still use the envelope of the protocol the request spoke.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { overflowedProtocol } from '../../src/server/overflow-protocol.ts';
import { ACME, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { capi, signV2, type V2Body } from '../v2/helpers.ts';
import { assertError, config, parseAnswer } from '../api3/fixtures.ts';
import { sdkError, teoClient } from '../helpers/sdk.ts';

const urls = (n: number) => Array.from({ length: n }, (_, i) => `https://${ACME.host}/a/fairly/long/path/to/file-${i}.jpg`);

/** Writes a request in small pieces, as a slow network delivers it, and returns the raw answer. */
function trickle(s: TestServer, request: string, piece = 4096): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(s.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('utf8')));
    socket.on('close', () => resolve(answer));
    socket.on('error', (e) => (answer ? resolve(answer) : reject(e)));
    socket.on('connect', async () => {
      for (let i = 0; i < request.length && !socket.destroyed; i += piece) {
        socket.write(request.slice(i, i + piece));
        await new Promise((r) => setTimeout(r, 2));
      }
    });
  });
}
const bodyOf = (answer: string): unknown => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

describe('a request line and headers over 64 KiB', () => {
  test('a legacy v2 GET is answered in the legacy envelope (4000, 9003), API 3.0 GETs in API 3.0\'s', async (t) => {
    const s = await startControlPlane(t, config());
    // qcloudapi-sdk itself, sending 1000 URLs in a GET query.
    const legacy = await capi(s, ACME, { Action: 'RefreshCdnUrl', urls: urls(1000) }, { method: 'GET' });
    assert.deepEqual(
      { code: legacy.code, codeDesc: legacy.codeDesc },
      { code: 4000, codeDesc: '9003' },
      JSON.stringify(legacy).slice(0, 300),
    );
    assert.match(legacy.message, /^\(9003\)The request line and headers exceed 65536 bytes/);
    // The official API 3.0 SDK over GET, v1-signed (Targets.N) and TC3-signed.
    for (const sign of ['HmacSHA256', 'TC3-HMAC-SHA256'] as const) {
      const teo = teoClient(s.endpoint, ACME.secretId, ACME.secretKey, sign, 'GET');
      const e = await sdkError(teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: urls(1000) }));
      assert.equal(e.code, 'RequestSizeLimitExceeded', sign);
    }
    assertError(await parseAnswer(await fetch(`${s.url}/?${'a'.repeat(70_000)}`)), 'RequestSizeLimitExceeded');
  });

  test('delivered in small pieces, so the request line was parsed chunks before the overflow, the envelope still matches', async (t) => {
    const s = await startControlPlane(t, config());
    const signed = signV2(s, ACME, { Action: 'RefreshCdnUrl', ...Object.fromEntries(urls(1000).map((u, i) => [`urls.${i}`, u])) }, { method: 'GET' });
    const v2 = bodyOf(await trickle(s, `GET /v2/index.php?${new URLSearchParams(signed.params)} HTTP/1.1\r\nHost: ${s.endpoint}\r\n\r\n`)) as V2Body;
    assert.equal(v2.code, 4000, JSON.stringify(v2));
    assert.equal(v2.codeDesc, '9003');
    const query = new URLSearchParams(Object.fromEntries(urls(1000).map((u, i) => [`Targets.${i}`, u]))).toString();
    const api3 = bodyOf(await trickle(s, `GET /?Action=CreatePurgeTask&${query} HTTP/1.1\r\nHost: ${s.endpoint}\r\n\r\n`)) as { Response: { Error: { Code: string } } };
    assert.equal(api3.Response.Error.Code, 'RequestSizeLimitExceeded');
  });
});

describe('overflowedProtocol', () => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  test('a request line in the chunk decides by its path (the last one in a keep-alive chunk)', () => {
    assert.equal(overflowedProtocol(b('GET /v2/index.php?Action=RefreshCdnUrl&Urls.0=x')), 'legacy');
    assert.equal(overflowedProtocol(b('GET /?Action=X&urls.0=y')), 'api3');
    assert.equal(overflowedProtocol(b('POST / HTTP/1.1\r\nHost: h\r\n\r\n{}GET /v2/index.php?a')), 'legacy');
    assert.equal(overflowedProtocol(b('GET /v2/index.php?a HTTP/1.1\r\nHost: h\r\n\r\nGET /?b')), 'api3');
  });

  test('otherwise a lower-case query key (urls.0, dirs.0: TENCENT-API §1.2) means legacy; PascalCase keys API 3.0', () => {
    assert.equal(overflowedProtocol(b('g-1.jpg&urls.2=https%3A%2F%2Fa.com%2F2')), 'legacy');
    assert.equal(overflowedProtocol(b('g-1.jpg&dirs_2=x HTTP/1.1\r\nHost: h\r\n\r\n')), 'legacy');
    assert.equal(overflowedProtocol(b('rls.1=x&Urls.2=y&Targets.3=z')), 'api3', 'a key cut by the chunk start is not read');
    assert.equal(overflowedProtocol(b('a=1&Targets.3=z HTTP/1.1\r\nReferer: http://x/?q=1&lower=2\r\n')), 'api3', 'header values are not the query');
  });

  test('header lines only, or nothing usable → API 3.0', () => {
    assert.equal(overflowedProtocol(b('aaaa\r\nCookie: x=1&y=2\r\n')), 'api3');
    assert.equal(overflowedProtocol(b('aaaaaaaa')), 'api3');
    assert.equal(overflowedProtocol(undefined), 'api3');
  });
});
