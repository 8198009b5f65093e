import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { ApiError } from '../../src/shared/errors.ts';
import {
  canonicalRequest,
  deriveSigningKey,
  hostCandidates,
  parseAuthorization,
  payloadHash,
  sha256Hex,
  signTc3,
  signTc3Request,
  stringToSign,
  utcDate,
  verifyTc3,
} from '../../src/protocols/tc3/tc3-signature.ts';

// TENCENT-API §2.4 test vector: the payload has literal backslash-u escapes, hashed as received.
const V = {
  secretId: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE',
  secretKey: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE',
  host: 'cvm.tencentcloudapi.com',
  contentType: 'application/json; charset=utf-8',
  timestamp: 1551113065,
  service: 'cvm',
  payload: '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}',
};

describe('TENCENT-API §2.4 vector, every intermediate value', () => {
  const date = utcDate(V.timestamp);
  const canonical = canonicalRequest({
    method: 'POST',
    path: '/',
    query: '',
    headers: [
      ['content-type', V.contentType],
      ['host', V.host],
    ],
    payloadHash: sha256Hex(V.payload),
  });
  // The first two links of the key chain, recomputed to check the intermediate values.
  const secretDate = createHmac('sha256', `TC3${V.secretKey}`).update(date).digest();
  const secretService = createHmac('sha256', secretDate).update(V.service).digest();

  test('date is the UTC date of the timestamp', () => assert.equal(date, '2019-02-25'));
  test('payload hash', () => assert.equal(sha256Hex(V.payload), '35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064'));
  test('canonical request', () => {
    assert.equal(
      canonical,
      'POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n' +
        '35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064',
    );
    assert.equal(sha256Hex(canonical), '5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031');
  });
  test('SecretDate, SecretService, SecretSigning', () => {
    assert.equal(secretDate.toString('hex'), 'd1308c81fe71cfd4e06437bbc067b2b8a3d2d8c0e375d547f15c41d5214b395a');
    assert.equal(secretService.toString('hex'), '3c7cb7c7795393edc14fd2e0e6434a518564b4504b88e94f5d11bf59ba3e7050');
    assert.equal(
      deriveSigningKey(V.secretKey, date, V.service).toString('hex'),
      'ac658d5dde49e9bfdd14e04e062f66b05d9f637d44b8a8d845327d4a77f666b1',
    );
  });
  test('string to sign and signature', () => {
    const sts = stringToSign(String(V.timestamp), date, V.service, canonical);
    assert.equal(sts, 'TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031');
    assert.equal(
      signTc3(deriveSigningKey(V.secretKey, date, V.service), sts),
      '72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168',
    );
  });
  test('signTc3Request produces the same Authorization', () => {
    const headers = signTc3Request({ ...V, action: 'DescribeInstances', version: '2017-03-12', body: V.payload, method: 'POST' });
    assert.equal(
      headers['Authorization'],
      'TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168',
    );
    assert.equal(headers['X-TC-Timestamp'], '1551113065');
    assert.equal(headers['Host'], V.host);
    assert.equal(headers['X-TC-Region'], undefined);
  });
});

describe('parseAuthorization', () => {
  const ok = 'TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=' + 'a'.repeat(64);

  test('parses the documented format, with or without spaces after commas', () => {
    const expected = { secretId: 'AKID', date: '2019-02-25', service: 'cvm', signedHeaders: ['content-type', 'host'], signature: 'a'.repeat(64) };
    assert.deepEqual(parseAuthorization(ok), expected);
    assert.deepEqual(parseAuthorization(ok.replaceAll(', ', ',')), expected);
  });

  test('the SDK form read once per scope gives each header its own signature, as the full parse does', () => {
    const other = ok.replace('a'.repeat(64), 'B'.repeat(64));
    assert.equal(parseAuthorization(ok).signature, 'a'.repeat(64));
    assert.equal(parseAuthorization(other).signature, 'b'.repeat(64));
    assert.equal(parseAuthorization(ok.replace('AKID/', 'AKID2/')).secretId, 'AKID2');
    // A scope that fails its checks is refused every time (never remembered as parsed).
    const badDate = ok.replace('2019-02-25', '2019-2-25');
    for (let i = 0; i < 2; i++) {
      assert.throws(() => parseAuthorization(badDate), (e: unknown) => e instanceof ApiError && e.code === 'AuthFailure.InvalidAuthorization');
    }
  });

  test('keeps a service with a port (Node SDK with localhost:PORT endpoint)', () => {
    assert.equal(parseAuthorization(ok.replace('/cvm/', '/localhost:18080/')).service, 'localhost:18080');
  });

  for (const [why, header] of [
    ['empty', ''],
    ['other scheme', 'Bearer abc'],
    ['missing Signature', 'TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host'],
    ['bad scope terminator', ok.replace('tc3_request', 'aws4_request')],
    ['bad date', ok.replace('2019-02-25', '20190225')],
    ['short scope', ok.replace('AKID/', '')],
    ['host not signed', ok.replace('content-type;host', 'content-type')],
    ['upper-case header names', ok.replace('content-type;host', 'Content-Type;Host')],
    ['non-hex signature', ok.replace('a'.repeat(64), 'z'.repeat(64))],
    ['unknown field', `${ok}, Extra=1`],
    ['duplicate field', `${ok}, Signature=${'b'.repeat(64)}`],
  ] as const) {
    test(`rejects ${why} with AuthFailure.InvalidAuthorization`, () => {
      assert.throws(() => parseAuthorization(header), (e: unknown) => e instanceof ApiError && e.code === 'AuthFailure.InvalidAuthorization');
    });
  }
});

describe('verifyTc3', () => {
  const body = Buffer.from('{"ZoneId":"z"}');
  const signed = signTc3Request({
    secretId: 'AKID', secretKey: 'sk', host: '127.0.0.1', service: '127', action: 'A', version: 'v',
    timestamp: 1700000000, body, method: 'POST', contentType: 'application/json',
  });
  const input = (headers: Record<string, string>, b: Buffer = body) => ({
    auth: parseAuthorization(headers['authorization']!),
    secretKey: 'sk', method: 'POST', path: '/', query: '', headers, body: b, timestamp: '1700000000',
  });
  const lower = (h: Record<string, string>): Record<string, string> =>
    Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));

  test('Node SDK style: signed host without port, Host header with port', () => {
    assert.deepEqual(verifyTc3(input({ ...lower(signed), host: '127.0.0.1:8080' })), { ok: true });
  });
  test('header values are trimmed and lower-cased', () => {
    assert.deepEqual(verifyTc3(input({ ...lower(signed), 'content-type': '  Application/JSON ' })), { ok: true });
  });
  test('forged body, other host, other key fail', () => {
    assert.equal(verifyTc3(input(lower(signed), Buffer.from('{"ZoneId":"y"}'))).ok, false);
    assert.equal(verifyTc3(input({ ...lower(signed), host: '127.0.0.2' })).ok, false);
    assert.equal(verifyTc3({ ...input(lower(signed)), secretKey: 'other' }).ok, false);
  });
  test('the HMAC over the cached key blocks is the HMAC: same answers as createHmac, ASCII or not, for many keys and scopes', () => {
    for (const [service, timestamp, key] of [['teo', '1700000000', 'sk'], ['cdn', '1700000001', 'x'.repeat(80)], ['tëo', '1700000002', 'sk'], ['日本', '1700000003', 'ключ']] as const) {
      const auth = { secretId: 'AKID', date: utcDate(Number(timestamp)), service, signedHeaders: ['content-type', 'host'], signature: '' };
      const canonical = canonicalRequest({ method: 'POST', path: '/', query: '', headers: [['content-type', 'application/json'], ['host', '127.0.0.1']], payloadHash: sha256Hex(body) });
      const toSign = stringToSign(timestamp, auth.date, service, canonical);
      const signature = createHmac('sha256', deriveSigningKey(key, auth.date, service)).update(toSign, 'utf8').digest('hex');
      const headers = { 'content-type': 'application/json', host: '127.0.0.1' };
      const base = { secretKey: key, method: 'POST', path: '/', query: '', headers, body, timestamp };
      // Twice: the second verification uses the cached key.
      for (let i = 0; i < 2; i++) assert.deepEqual(verifyTc3({ ...base, auth: { ...auth, signature } }), { ok: true }, `${service} ${i}`);
      assert.equal(verifyTc3({ ...base, auth: { ...auth, signature: signature.replace(/^./, (c) => (c === '0' ? '1' : '0')) } }).ok, false);
    }
  });
  test('a missing signed header is named in the reason', () => {
    const h = lower(signed);
    delete h['content-type'];
    const v = verifyTc3(input(h));
    assert.equal(v.ok, false);
    assert.match(v.ok ? '' : v.reason, /content-type/);
  });
  test('UNSIGNED-PAYLOAD hashes the literal, not the body', () => {
    assert.equal(payloadHash(body, 'UNSIGNED-PAYLOAD'), sha256Hex('UNSIGNED-PAYLOAD'));
    assert.equal(payloadHash(body, undefined), sha256Hex(body));
    assert.equal(payloadHash(body, 'something-else'), sha256Hex(body));
  });
  test('host candidates: as sent, then without the port', () => {
    assert.deepEqual(hostCandidates('127.0.0.1:8080'), ['127.0.0.1:8080', '127.0.0.1']);
    assert.deepEqual(hostCandidates('[::1]:8080'), ['[::1]:8080', '[::1]']);
    assert.deepEqual(hostCandidates('teo.example.test'), ['teo.example.test']);
    assert.deepEqual(hostCandidates('http://127.0.0.1:18080'), ['http://127.0.0.1:18080']);
  });
});
