import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/shared/clock.ts';
import { ApiError, type ErrorCode } from '../../src/shared/errors.ts';
import { hmacSign, hmacStringToSign, type HmacSignatureMethod } from '../../src/protocols/hmac-signature.ts';
import type { AuthDeps, Credential, RawRequest } from '../../src/protocols/request-parts.ts';
import { decodeV2Request } from '../../src/protocols/v2/v2-request.ts';

const NOW = 1_700_000_000;
const SECRET_ID = 'AKIDlegacy';
const SECRET_KEY = 'legacy-secret';
const creds = new Map<string, Credential>([
  [SECRET_ID, { secretKey: SECRET_KEY, appId: 7 }],
  ['AKIDother', { secretKey: 'other-secret', appId: 8 }],
]);

function deps(): AuthDeps & { clock: ManualClock } {
  return { clock: new ManualClock(NOW * 1000), lookupSecret: (id: string) => creds.get(id) };
}

interface V2Opts {
  key?: string;
  secretId?: string;
  signatureMethod?: HmacSignatureMethod;
  host?: string;
  signHost?: string;
  drop?: string;
  nonce?: string;
  timestamp?: number;
  encoding?: 'form' | 'multipart';
}

/** A legacy request signed like qcloudapi-sdk: every param, empty Region= included, Host with port. */
async function v2(method: string, fields: Record<string, string>, o: V2Opts = {}): Promise<RawRequest> {
  const host = o.host ?? '127.0.0.1:8080';
  const params: Record<string, string> = {
    Region: '', SecretId: o.secretId ?? SECRET_ID, Timestamp: String(o.timestamp ?? NOW), Nonce: o.nonce ?? '4242',
    RequestClient: 'SDK_NODEJS_0.2.1', ...fields,
  };
  const sm = o.signatureMethod ?? 'HmacSHA1';
  if (sm !== 'HmacSHA1') params['SignatureMethod'] = sm;
  params['Signature'] = hmacSign(o.key ?? SECRET_KEY, hmacStringToSign(method, o.signHost ?? host, '/v2/index.php', params, sm), sm);
  if (o.drop !== undefined) delete params[o.drop];
  if (o.encoding === 'multipart') {
    const form = new FormData();
    for (const [k, v] of Object.entries(params)) form.append(k, v);
    const res = new Response(form);
    return {
      method, rawUrl: '/v2/index.php', remoteAddress: '192.0.2.1', body: Buffer.from(await res.arrayBuffer()),
      headers: { host, 'content-type': res.headers.get('content-type')! },
    };
  }
  const encoded = new URLSearchParams(params).toString();
  return method === 'GET'
    ? { method, rawUrl: `/v2/index.php?${encoded}`, headers: { host }, body: Buffer.alloc(0), remoteAddress: '192.0.2.1' }
    : {
        method, rawUrl: '/v2/index.php', remoteAddress: '192.0.2.1', body: Buffer.from(encoded),
        headers: { host, 'content-type': 'application/x-www-form-urlencoded' },
      };
}

const apiError = (code: ErrorCode, legacy?: number, message?: RegExp) => (e: unknown): boolean => {
  if (!(e instanceof ApiError)) return false;
  assert.equal(e.code, code, e.message);
  if (legacy !== undefined) assert.equal(e.legacy.code, legacy);
  if (message !== undefined) assert.match(e.message, message);
  return true;
};

const refresh = { Action: 'RefreshCdnUrl', 'urls.0': 'https://www.example.com/a b.jpg', 'urls.1': 'https://www.example.com/中文.jpg' };
const urls = ['https://www.example.com/a b.jpg', 'https://www.example.com/中文.jpg'];

describe('decodeV2Request', () => {
  for (const [method, encoding] of [['GET', 'form'], ['POST', 'form'], ['POST', 'multipart']] as const) {
    for (const signatureMethod of ['HmacSHA1', 'HmacSHA256'] as const) {
      test(`${method} ${encoding} ${signatureMethod}: urls.N → string[], common params stripped`, async () => {
        const r = decodeV2Request(await v2(method, refresh, { signatureMethod, encoding }), deps());
        const { nonce, ...rest } = r;
        assert.deepEqual(rest, { action: 'RefreshCdnUrl', params: { urls }, secretId: SECRET_ID, appId: 7, clientIp: '192.0.2.1' });
        assert.deepEqual({ ...nonce, signature: undefined }, { secretId: SECRET_ID, timestamp: NOW, nonce: '4242', signature: undefined });
      });
    }
  }

  test('PHP-style keys (urls_0) mean urls.0; scalars like startDate stay strings', async () => {
    const r = decodeV2Request(
      await v2('POST', { Action: 'GetCdnRefreshLog', startDate: '2024-01-01 00:00:00', endDate: '2024-01-02 00:00:00', hosts_0: 'a.com', hosts_1: 'b.com' }),
      deps(),
    );
    assert.deepEqual(r.params, { startDate: '2024-01-01 00:00:00', endDate: '2024-01-02 00:00:00', hosts: ['a.com', 'b.com'] });
  });

  test('both spellings of one key → InvalidParameter (4000)', async () => {
    await assert.rejects(async () => decodeV2Request(await v2('POST', { ...refresh, urls_0: 'x' }), deps()), apiError('InvalidParameter', 4000, /urls\.0/));
  });

  test('the Host header with its port is what is signed', async () => {
    await assert.rejects(
      async () => decodeV2Request(await v2('POST', refresh, { signHost: '127.0.0.1' }), deps()),
      apiError('AuthFailure.SignatureFailure', 4100, /POST127\.0\.0\.1:8080\/v2\/index\.php\?Action=RefreshCdnUrl&Nonce=4242&Region=&/),
    );
  });

  test('forged value / wrong key → SignatureFailure (4100); unknown SecretId → SecretIdNotFound (4100)', async () => {
    const forged = await v2('GET', refresh);
    await assert.rejects(async () => decodeV2Request({ ...forged, rawUrl: forged.rawUrl.replace('a+b', 'a+c') }, deps()), apiError('AuthFailure.SignatureFailure', 4100));
    await assert.rejects(async () => decodeV2Request(await v2('GET', refresh, { key: 'bad' }), deps()), apiError('AuthFailure.SignatureFailure'));
    await assert.rejects(async () => decodeV2Request(await v2('GET', refresh, { secretId: 'AKIDnobody' }), deps()), apiError('AuthFailure.SecretIdNotFound', 4100));
  });

  test('Timestamp window is 2 hours → SignatureExpire (4200)', async () => {
    assert.equal(decodeV2Request(await v2('GET', refresh, { timestamp: NOW - 7200 }), deps()).action, 'RefreshCdnUrl');
    assert.equal(decodeV2Request(await v2('GET', refresh, { timestamp: NOW + 7200 }), deps()).action, 'RefreshCdnUrl');
    await assert.rejects(async () => decodeV2Request(await v2('GET', refresh, { timestamp: NOW - 7201 }), deps()), apiError('AuthFailure.SignatureExpire', 4200));
    await assert.rejects(async () => decodeV2Request(await v2('GET', refresh, { timestamp: NOW + 7201 }), deps()), apiError('AuthFailure.SignatureExpire', 4200));
  });

  test('missing common params → MissingParameter (4000) listing them', async () => {
    await assert.rejects(async () => decodeV2Request(await v2('GET', refresh, { drop: 'Nonce' }), deps()), apiError('MissingParameter', 4000, /Nonce/));
    await assert.rejects(async () => decodeV2Request(await v2('GET', { 'urls.0': 'x' }), deps()), apiError('MissingParameter', 4000, /Action/));
    const bare: RawRequest = { method: 'GET', rawUrl: '/v2/index.php', headers: {}, body: Buffer.alloc(0), remoteAddress: '' };
    assert.throws(() => decodeV2Request(bare, deps()), apiError('MissingParameter', 4000, /Action, SecretId, Timestamp, Nonce, Signature/));
  });

  test('other methods → UnsupportedProtocol (4600)', async () => {
    await assert.rejects(async () => decodeV2Request(await v2('PUT', refresh), deps()), apiError('UnsupportedProtocol', 4600));
  });

  test('an unknown SignatureMethod → InvalidParameterValue; a non-numeric Nonce → InvalidParameter', async () => {
    const req = await v2('GET', { ...refresh, SignatureMethod: 'MD5' });
    assert.throws(() => decodeV2Request(req, deps()), apiError('InvalidParameterValue'));
    await assert.rejects(async () => decodeV2Request(await v2('GET', refresh, { nonce: '12ab' }), deps()), apiError('InvalidParameter', 4000, /Nonce/));
  });

  test('a Token → TokenFailure; a JSON body → InvalidParameter', async () => {
    await assert.rejects(async () => decodeV2Request(await v2('GET', { ...refresh, Token: 'tmp' }), deps()), apiError('AuthFailure.TokenFailure'));
    const json: RawRequest = { method: 'POST', rawUrl: '/v2/index.php', headers: { 'content-type': 'application/json' }, body: Buffer.from('{}'), remoteAddress: '' };
    assert.throws(() => decodeV2Request(json, deps()), apiError('InvalidParameter', 4000, /application\/json/));
  });

  test('sparse urls → InvalidParameter after the signature verified', async () => {
    await assert.rejects(async () => decodeV2Request(await v2('GET', { Action: 'RefreshCdnUrl', 'urls.0': 'a', 'urls.5': 'b' }), deps()), apiError('InvalidParameter', 4000, /sparse/));
  });
});

describe('replay protection is left to the caller', () => {
  test('decoding records no Nonce: a request refused after decoding (unknown action, rate limit) keeps its Nonce', async () => {
    const d = deps();
    const req = await v2('POST', refresh);
    const first = decodeV2Request(req, d);
    assert.deepEqual(decodeV2Request(req, d).nonce, first.nonce);
  });

  test('the claim is the signed Timestamp, Nonce and Signature, the same for a replay re-spelled with PHP-style keys', async () => {
    const req = await v2('GET', refresh);
    const respelled = { ...req, rawUrl: req.rawUrl.replaceAll('urls.', 'urls_') };
    assert.deepEqual(decodeV2Request(respelled, deps()).nonce, decodeV2Request(req, deps()).nonce);
    const params = new URLSearchParams(req.rawUrl.split('?')[1]);
    assert.equal(decodeV2Request(req, deps()).nonce.signature, params.get('Signature'));
  });
});
