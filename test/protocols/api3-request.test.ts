import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/shared/clock.ts';
import { ApiError, type ErrorCode } from '../../src/shared/errors.ts';
import { hmacSign, hmacStringToSign, type HmacSignatureMethod } from '../../src/protocols/hmac-signature.ts';
import type { Credential, RawRequest } from '../../src/protocols/request-parts.ts';
import { decodeApi3Request } from '../../src/protocols/tc3/api3-request.ts';
import {
  canonicalRequest,
  deriveSigningKey,
  sha256Hex,
  signTc3,
  signTc3Request,
  stringToSign,
  utcDate,
  type Tc3SignRequest,
} from '../../src/protocols/tc3/tc3-signature.ts';

const NOW = 1_700_000_000;
const SECRET_ID = 'AKIDapi3test';
const SECRET_KEY = 'api3-secret';
const creds = new Map<string, Credential>([[SECRET_ID, { secretKey: SECRET_KEY, appId: 42 }]]);

function deps(clock = new ManualClock(NOW * 1000)) {
  return { clock, lookupSecret: (id: string) => creds.get(id) };
}

const lowerKeys = (h: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));

type Tamperable = { -readonly [K in keyof RawRequest]: RawRequest[K] } & { headers: Record<string, string> };

/** A TC3 request signed by our signer, shaped as the HTTP server hands it over; `tamper` edits it after signing. */
function tc3(over: Partial<Tc3SignRequest> = {}, tamper: (r: Tamperable) => void = () => {}): RawRequest {
  const s: Tc3SignRequest = {
    secretId: SECRET_ID, secretKey: SECRET_KEY, host: '127.0.0.1:8080', service: 'teo', action: 'CreatePurgeTask',
    version: '2022-09-01', timestamp: NOW, body: '{"ZoneId":"z","Targets":["https://a.com/1"]}', method: 'POST',
    contentType: 'application/json', ...over,
  };
  const r: Tamperable = {
    method: s.method,
    rawUrl: s.query ? `/?${s.query}` : '/',
    headers: lowerKeys(signTc3Request(s)),
    body: Buffer.from(s.body),
    remoteAddress: '::ffff:10.0.0.7',
  };
  tamper(r);
  return r;
}

const apiError = (code: ErrorCode, message?: RegExp) => (e: unknown): boolean => {
  if (!(e instanceof ApiError)) return false;
  assert.equal(e.code, code, e.message);
  if (message !== undefined) assert.match(e.message, message);
  return true;
};

describe('TC3-HMAC-SHA256', () => {
  test('POST JSON decodes to action, version, params and account', () => {
    const r = decodeApi3Request(tc3(), deps());
    assert.deepEqual(r, {
      action: 'CreatePurgeTask', version: '2022-09-01', params: { ZoneId: 'z', Targets: ['https://a.com/1'] },
      secretId: SECRET_ID, appId: 42, region: undefined, language: undefined, clientIp: '10.0.0.7',
      signatureMethod: 'TC3-HMAC-SHA256',
    });
  });

  test('application/json; charset=utf-8 and a Python-style body (spaces, \\u escapes) verify on the raw bytes', () => {
    const body = '{"ZoneId": "z", "Targets": ["https://a.com/\\u4e2d"]}';
    const r = decodeApi3Request(tc3({ body, contentType: 'application/json; charset=utf-8' }), deps());
    assert.deepEqual(r.params, { ZoneId: 'z', Targets: ['https://a.com/中'] });
  });

  test('SignedHeaders naming a prototype key (constructor, __proto__, tostring) is an AuthFailure, not a TypeError', () => {
    for (const name of ['constructor', '__proto__', 'tostring', 'valueof']) {
      const req = tc3({}, (r) => {
        r.headers['authorization'] = r.headers['authorization']!.replace('SignedHeaders=content-type;host', `SignedHeaders=content-type;host;${name}`);
      });
      assert.throws(() => decodeApi3Request(req, deps()), apiError('AuthFailure.SignatureFailure', new RegExp(`${name} absent`)));
    }
  });

  test('a header genuinely named constructor can be signed like any other', () => {
    const body = '{"ZoneId":"z"}';
    const headers = { 'content-type': 'application/json', host: '127.0.0.1:8080', constructor: 'Value ' };
    const canonical = canonicalRequest({ method: 'POST', path: '/', query: '', headers: Object.entries(headers), payloadHash: sha256Hex(body) });
    const date = utcDate(NOW);
    const signature = signTc3(deriveSigningKey(SECRET_KEY, date, 'teo'), stringToSign(String(NOW), date, 'teo', canonical));
    const req: RawRequest = {
      method: 'POST', rawUrl: '/', body: Buffer.from(body), remoteAddress: '127.0.0.1',
      headers: {
        ...headers, 'x-tc-action': 'CreatePurgeTask', 'x-tc-version': '2022-09-01', 'x-tc-timestamp': String(NOW),
        authorization: `TC3-HMAC-SHA256 Credential=${SECRET_ID}/${date}/teo/tc3_request, SignedHeaders=content-type;host;constructor, Signature=${signature}`,
      },
    };
    assert.equal(decodeApi3Request(req, deps()).action, 'CreatePurgeTask');
  });

  test('GET: the raw query is the canonical query and is unflattened', () => {
    const query = 'ZoneId=z&Limit=20&Filters.0.Name=target&Filters.0.Values.0=https%3A%2F%2Fa.com%2F%E4%B8%AD';
    const r = decodeApi3Request(tc3({ method: 'GET', body: '', query, contentType: 'application/x-www-form-urlencoded' }), deps());
    assert.deepEqual(r.params, { ZoneId: 'z', Limit: '20', Filters: [{ Name: 'target', Values: ['https://a.com/中'] }] });
  });

  test('GET: a query altered after signing fails', () => {
    const req = tc3({ method: 'GET', body: '', query: 'ZoneId=z', contentType: 'application/x-www-form-urlencoded' }, (r) => {
      r.rawUrl = '/?ZoneId=y';
    });
    assert.throws(() => decodeApi3Request(req, deps()), apiError('AuthFailure.SignatureFailure'));
  });

  test('POST form body decodes', () => {
    const r = decodeApi3Request(tc3({ body: 'ZoneId=z&Targets.0=a+b', contentType: 'application/x-www-form-urlencoded' }), deps());
    assert.deepEqual(r.params, { ZoneId: 'z', Targets: ['a b'] });
  });

  test('region and language come from X-TC-Region / X-TC-Language', () => {
    const r = decodeApi3Request(tc3({ region: 'ap-guangzhou', language: 'en-US' }), deps());
    assert.equal(r.region, 'ap-guangzhou');
    assert.equal(r.language, 'en-US');
  });

  test('extra signed headers are honoured, values lower-cased (x-tc-action → createpurgetask)', () => {
    const body = '{}';
    const date = utcDate(NOW);
    const headers: [string, string][] = [['content-type', 'application/json'], ['host', 'edge.test'], ['x-tc-action', 'CreatePurgeTask']];
    const canonical = canonicalRequest({ method: 'POST', path: '/', query: '', headers, payloadHash: sha256Hex(body) });
    assert.match(canonical, /x-tc-action:createpurgetask\n/);
    const sig = signTc3(deriveSigningKey(SECRET_KEY, date, 'teo'), stringToSign(String(NOW), date, 'teo', canonical));
    const req: RawRequest = {
      method: 'POST', rawUrl: '/', body: Buffer.from(body), remoteAddress: '127.0.0.1',
      headers: {
        authorization: `TC3-HMAC-SHA256 Credential=${SECRET_ID}/${date}/teo/tc3_request, SignedHeaders=content-type;host;x-tc-action, Signature=${sig}`,
        'content-type': 'application/json', host: 'edge.test', 'x-tc-action': 'CreatePurgeTask',
        'x-tc-version': '2022-09-01', 'x-tc-timestamp': String(NOW),
      },
    };
    assert.equal(decodeApi3Request(req, deps()).action, 'CreatePurgeTask');
    const forged = { ...req, headers: { ...req.headers, 'x-tc-action': 'DescribePurgeTasks' } };
    assert.throws(() => decodeApi3Request(forged, deps()), apiError('AuthFailure.SignatureFailure'));
  });

  test('X-TC-Content-SHA256: UNSIGNED-PAYLOAD signs the literal instead of the body', () => {
    const body = '{"ZoneId":"z"}';
    const date = utcDate(NOW);
    const headers: [string, string][] = [['content-type', 'application/json'], ['host', 'edge.test']];
    const canonical = canonicalRequest({ method: 'POST', path: '/', query: '', headers, payloadHash: sha256Hex('UNSIGNED-PAYLOAD') });
    const sig = signTc3(deriveSigningKey(SECRET_KEY, date, 'teo'), stringToSign(String(NOW), date, 'teo', canonical));
    const req: RawRequest = {
      method: 'POST', rawUrl: '/', body: Buffer.from(body), remoteAddress: '127.0.0.1',
      headers: {
        authorization: `TC3-HMAC-SHA256 Credential=${SECRET_ID}/${date}/teo/tc3_request, SignedHeaders=content-type;host, Signature=${sig}`,
        'content-type': 'application/json', host: 'edge.test', 'x-tc-content-sha256': 'UNSIGNED-PAYLOAD',
        'x-tc-action': 'DescribePurgeTasks', 'x-tc-version': '2022-09-01', 'x-tc-timestamp': String(NOW),
      },
    };
    assert.deepEqual(decodeApi3Request(req, deps()).params, { ZoneId: 'z' });
  });

  describe('refusals', () => {
    test('forged body → AuthFailure.SignatureFailure, naming what was checked', () => {
      const req = tc3({}, (r) => { r.body = Buffer.from('{"ZoneId":"other","Targets":["https://a.com/1"]}'); });
      assert.throws(() => decodeApi3Request(req, deps()), apiError('AuthFailure.SignatureFailure', /scope .*\/teo\/tc3_request.*host tried as "127.0.0.1:8080" and "127.0.0.1"/));
    });
    test('wrong key → AuthFailure.SignatureFailure', () => {
      assert.throws(() => decodeApi3Request(tc3({ secretKey: 'nope' }), deps()), apiError('AuthFailure.SignatureFailure'));
    });
    test('forged Host → AuthFailure.SignatureFailure', () => {
      assert.throws(() => decodeApi3Request(tc3({}, (r) => { r.headers['host'] = 'evil.test'; }), deps()), apiError('AuthFailure.SignatureFailure'));
    });
    test('±300 s window → AuthFailure.SignatureExpire; 300 s itself is fine', () => {
      assert.equal(decodeApi3Request(tc3(), deps(new ManualClock((NOW + 300) * 1000))).action, 'CreatePurgeTask');
      assert.equal(decodeApi3Request(tc3(), deps(new ManualClock((NOW - 300) * 1000))).action, 'CreatePurgeTask');
      assert.throws(() => decodeApi3Request(tc3(), deps(new ManualClock((NOW + 301) * 1000))), apiError('AuthFailure.SignatureExpire', /301 s behind/));
      assert.throws(() => decodeApi3Request(tc3(), deps(new ManualClock((NOW - 301) * 1000))), apiError('AuthFailure.SignatureExpire', /ahead of/));
    });
    test('a non-numeric X-TC-Timestamp → InvalidParameter', () => {
      assert.throws(() => decodeApi3Request(tc3({}, (r) => { r.headers['x-tc-timestamp'] = '17e8'; }), deps()), apiError('InvalidParameter'));
    });
    test('credential date other than the UTC date of the timestamp → SignatureFailure', () => {
      const req = tc3({}, (r) => { r.headers['authorization'] = r.headers['authorization']!.replace(utcDate(NOW), '2023-11-15'); });
      assert.throws(() => decodeApi3Request(req, deps()), apiError('AuthFailure.SignatureFailure', /UTC date/));
    });
    test('unknown SecretId → AuthFailure.SecretIdNotFound', () => {
      assert.throws(() => decodeApi3Request(tc3({ secretId: 'AKIDnobody' }), deps()), apiError('AuthFailure.SecretIdNotFound', /AKIDnobody/));
    });
    test('malformed Authorization → AuthFailure.InvalidAuthorization', () => {
      assert.throws(() => decodeApi3Request(tc3({}, (r) => { r.headers['authorization'] = 'TC3-HMAC-SHA256 garbage'; }), deps()), apiError('AuthFailure.InvalidAuthorization'));
    });
    test('missing X-TC-Action / X-TC-Version → MissingParameter naming them', () => {
      const req = tc3({}, (r) => { delete r.headers['x-tc-action']; delete r.headers['x-tc-version']; });
      assert.throws(() => decodeApi3Request(req, deps()), apiError('MissingParameter', /X-TC-Action, X-TC-Version/));
    });
    test('PUT / DELETE → UnsupportedProtocol', () => {
      for (const method of ['PUT', 'DELETE', 'OPTIONS']) {
        assert.throws(() => decodeApi3Request({ ...tc3(), method }, deps()), apiError('UnsupportedProtocol'));
      }
    });
    test('X-TC-Token → AuthFailure.TokenFailure (no temporary credentials)', () => {
      assert.throws(() => decodeApi3Request(tc3({ token: 'tok' }), deps()), apiError('AuthFailure.TokenFailure'));
    });
    test('signed but malformed JSON → InvalidParameter with the parser reason', () => {
      assert.throws(() => decodeApi3Request(tc3({ body: '{"ZoneId":' }), deps()), apiError('InvalidParameter', /not valid JSON/));
    });
    test('absurdly nested JSON → InvalidParameter before parsing (brackets inside strings do not count)', () => {
      const deep = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
      assert.throws(() => decodeApi3Request(tc3({ body: deep }), deps()), apiError('InvalidParameter', /nests deeper than 32/));
      const value = `${'[{'.repeat(100)}"]\\`; // brackets, an escaped quote and a backslash inside a string
      assert.deepEqual(decodeApi3Request(tc3({ body: JSON.stringify({ Targets: [value] }) }), deps()).params, { Targets: [value] });
    });
    test('Python SDK style Host (the literal http://127.0.0.1:18080) verifies as sent', () => {
      assert.equal(decodeApi3Request(tc3({ host: 'http://127.0.0.1:18080' }), deps()).action, 'CreatePurgeTask');
    });
    test('signed JSON that is not an object → InvalidParameter', () => {
      for (const [body, what] of [['[1]', /an array/], ['null', /null/], ['"x"', /string/], ['3', /number/]] as const) {
        assert.throws(() => decodeApi3Request(tc3({ body }), deps()), apiError('InvalidParameter', what));
      }
    });
    test('signed body that is not UTF-8 → InvalidParameter', () => {
      assert.throws(() => decodeApi3Request(tc3({ body: Buffer.from([0x7b, 0xff, 0x7d]) }), deps()), apiError('InvalidParameter', /UTF-8/));
    });
    test('an empty JSON body is an empty input', () => {
      assert.deepEqual(decodeApi3Request(tc3({ body: '' }), deps()).params, {});
    });
    test('the signature is checked before the body is parsed: forged + malformed → SignatureFailure', () => {
      assert.throws(() => decodeApi3Request(tc3({}, (r) => { r.body = Buffer.from('{oops'); }), deps()), apiError('AuthFailure.SignatureFailure'));
    });
    test('unsupported Content-Type → InvalidParameter', () => {
      assert.throws(() => decodeApi3Request(tc3({ contentType: 'text/plain' }), deps()), apiError('InvalidParameter', /text\/plain/));
    });
    test('signed form with sparse keys → InvalidParameter', () => {
      const req = tc3({ body: 'Targets.0=a&Targets.2=c', contentType: 'application/x-www-form-urlencoded' });
      assert.throws(() => decodeApi3Request(req, deps()), apiError('InvalidParameter', /sparse/));
    });
  });
});

/** A v1 request (§2.5) signed over METHOD + host + "/" + sorted raw params. */
function v1(
  method: 'GET' | 'POST',
  fields: Record<string, string>,
  opts: { key?: string; signatureMethod?: HmacSignatureMethod; host?: string; signHost?: string; drop?: string } = {},
): RawRequest {
  const host = opts.host ?? '127.0.0.1:8080';
  const params: Record<string, string> = {
    Action: 'CreatePurgeTask', Version: '2022-09-01', Timestamp: String(NOW), Nonce: '123', SecretId: SECRET_ID,
    RequestClient: 'SDK_NODEJS_4.1.220', ...fields,
  };
  const sm = opts.signatureMethod ?? 'HmacSHA1';
  if (sm !== 'HmacSHA1') params['SignatureMethod'] = sm;
  params['Signature'] = hmacSign(opts.key ?? SECRET_KEY, hmacStringToSign(method, opts.signHost ?? host, '/', params, sm), sm);
  if (opts.drop !== undefined) delete params[opts.drop];
  const encoded = new URLSearchParams(params).toString();
  return method === 'GET'
    ? { method, rawUrl: `/?${encoded}`, headers: { host }, body: Buffer.alloc(0), remoteAddress: '127.0.0.1' }
    : {
        method, rawUrl: '/', remoteAddress: '127.0.0.1', body: Buffer.from(encoded),
        headers: { host, 'content-type': 'application/x-www-form-urlencoded' },
      };
}

describe('v1 HmacSHA1 / HmacSHA256', () => {
  const fields = { ZoneId: 'z', Type: 'purge_url', 'Targets.0': 'https://a.com/a b', 'Targets.1': 'https://a.com/中' };
  for (const method of ['GET', 'POST'] as const) {
    for (const signatureMethod of ['HmacSHA1', 'HmacSHA256'] as const) {
      test(`${method} ${signatureMethod} decodes; common params are stripped`, () => {
        const req = v1(method, { ...fields, Region: 'ap-guangzhou', Language: 'en-US' }, { signatureMethod });
        const r = decodeApi3Request(req, deps());
        const signature = new URLSearchParams(method === 'GET' ? req.rawUrl.slice(2) : req.body.toString()).get('Signature')!;
        assert.deepEqual(r, {
          action: 'CreatePurgeTask', version: '2022-09-01', secretId: SECRET_ID, appId: 42, region: 'ap-guangzhou',
          language: 'en-US', clientIp: '127.0.0.1', signatureMethod,
          params: { ZoneId: 'z', Type: 'purge_url', Targets: ['https://a.com/a b', 'https://a.com/中'] },
          // For the replay check the caller makes once everything else passed.
          nonce: { secretId: SECRET_ID, timestamp: NOW, nonce: '123', signature },
        });
      });
    }
  }
  test('the host is signed with its port: signing without it fails', () => {
    assert.throws(() => decodeApi3Request(v1('GET', fields, { signHost: '127.0.0.1' }), deps()), apiError('AuthFailure.SignatureFailure', /HmacSHA1 signature mismatch/));
  });
  test('wrong key → SignatureFailure; unknown SecretId → SecretIdNotFound', () => {
    assert.throws(() => decodeApi3Request(v1('POST', fields, { key: 'bad' }), deps()), apiError('AuthFailure.SignatureFailure'));
    assert.throws(() => decodeApi3Request(v1('POST', { ...fields, SecretId: 'AKIDnobody' }), deps()), apiError('AuthFailure.SecretIdNotFound'));
  });
  test('Timestamp outside ±300 s → SignatureExpire', () => {
    assert.throws(() => decodeApi3Request(v1('GET', { ...fields, Timestamp: String(NOW - 301) }), deps()), apiError('AuthFailure.SignatureExpire'));
  });
  test('missing common params → MissingParameter listing them', () => {
    assert.throws(() => decodeApi3Request(v1('GET', fields, { drop: 'Signature' }), deps()), apiError('MissingParameter', /Signature/));
    assert.throws(() => decodeApi3Request(v1('GET', { ...fields, Version: '' }), deps()), apiError('MissingParameter', /Version/));
  });
  test('no Authorization header and no v1 params → MissingParameter', () => {
    const bare: RawRequest = { method: 'GET', rawUrl: '/', headers: { host: 'x' }, body: Buffer.alloc(0), remoteAddress: '1.2.3.4' };
    assert.throws(() => decodeApi3Request(bare, deps()), apiError('MissingParameter', /Action, Version, SecretId, Timestamp, Nonce, Signature/));
    const json: RawRequest = { ...bare, method: 'POST', headers: { host: 'x', 'content-type': 'application/json' }, body: Buffer.from('{}') };
    assert.throws(() => decodeApi3Request(json, deps()), apiError('MissingParameter', /Authorization/));
  });
  test('an unknown SignatureMethod → InvalidParameterValue', () => {
    assert.throws(() => decodeApi3Request(v1('GET', fields, { signatureMethod: 'TC2-HmacSHA256' }), deps()), apiError('InvalidParameterValue'));
  });
  test('a non-numeric Nonce → InvalidParameter; a 19-digit Python Nonce is fine', () => {
    assert.throws(() => decodeApi3Request(v1('GET', { ...fields, Nonce: 'abc' }), deps()), apiError('InvalidParameter', /Nonce/));
    assert.equal(decodeApi3Request(v1('GET', { ...fields, Nonce: '9223372036854775807' }), deps()).action, 'CreatePurgeTask');
  });
  test('a malformed form is answered cleanly before verification', () => {
    const req: RawRequest = { method: 'POST', rawUrl: '/', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from('a=%zz'), remoteAddress: '' };
    assert.throws(() => decodeApi3Request(req, deps()), apiError('InvalidParameter', /percent-encoding/));
  });
});
