// Property-based fuzzing of the API 3.0 endpoint ("/") against a real control plane: properly signed
// requests with hostile field values for every action, in every encoding (TC3 JSON, form, GET, multipart,
// v1 HmacSHA1/256); signed garbage bodies; headers mutated after signing. Every answer is the §2.6
// envelope with a registered code, never InternalError, and a refusal writes nothing (DESIGN invariant 8).
import assert from 'node:assert/strict';
import type { OutgoingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { hmacSign, hmacStringToSign, type HmacSignatureMethod } from '../../src/protocols/hmac-signature.ts';
import { signTc3Request } from '../../src/protocols/tc3/tc3-signature.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { ERRORS } from '../../src/shared/errors.ts';
import { ACME, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { CDN, config, TEO } from '../api3/fixtures.ts';
import { encodeComponent, flatten, formText, fuzz, hostileJson, jsonObjectText, nastyString, send, sendRaw, type HttpAnswer } from './fuzz.ts';
import { storeSnapshot } from './store-snapshot.ts';
import {
  boolish, cdnTimeish, filtersish, FUZZ_NOW, headersish, hostish, intish, isoish, jobIdish, oneOfish, strish, targetList, urlish, zoneish,
} from './values.ts';

type Fields = Record<string, fc.Arbitrary<unknown>>;

const area = oneOfish('mainland', 'overseas', 'global');
const historyFields = (time: fc.Arbitrary<unknown>): Fields => ({ StartTime: time, EndTime: time, Offset: intish, Limit: intish });

/** Every action of src/actions/registry.ts with a near-valid-or-hostile value for each of its fields. */
const ACTIONS: ReadonlyArray<{ version: string; action: string; writes: boolean; fields: Fields }> = [
  {
    version: TEO, action: 'CreatePurgeTask', writes: true,
    fields: {
      ZoneId: zoneish,
      Type: oneOfish('purge_url', 'purge_prefix', 'purge_host', 'purge_all', 'purge_cache_tag'),
      Method: oneOfish('invalidate', 'delete'),
      Targets: targetList(fc.oneof(urlish, hostish, nastyString)),
      EncodeUrl: boolish,
      CacheTag: fc.oneof(fc.record({ Domains: targetList(hostish) }, { requiredKeys: [] }), fc.record({ Domains: targetList(hostish), Tags: hostileJson }), hostileJson),
    },
  },
  {
    version: TEO, action: 'CreatePrefetchTask', writes: true,
    fields: { ZoneId: zoneish, Targets: targetList(urlish), Mode: oneOfish('default', 'edge'), EncodeUrl: boolish, Headers: headersish, PrefetchMediaSegments: oneOfish('on', 'off') },
  },
  { version: TEO, action: 'DescribePurgeTasks', writes: false, fields: { ZoneId: zoneish, ...historyFields(isoish), Filters: filtersish } },
  { version: TEO, action: 'DescribePrefetchTasks', writes: false, fields: { ZoneId: zoneish, ...historyFields(isoish), Filters: filtersish } },
  { version: TEO, action: 'DescribeContentQuota', writes: false, fields: { ZoneId: zoneish } },
  { version: CDN, action: 'PurgeUrlsCache', writes: true, fields: { Urls: targetList(urlish), Area: area, UrlEncode: boolish } },
  { version: CDN, action: 'PurgePathCache', writes: true, fields: { Paths: targetList(urlish), FlushType: oneOfish('flush', 'delete'), UrlEncode: boolish, Area: area } },
  {
    version: CDN, action: 'PushUrlsCache', writes: true,
    fields: { Urls: targetList(urlish), UserAgent: strish, Area: area, Layer: strish, ParseM3U8: boolish, DisableRange: boolish, Headers: headersish, UrlEncode: boolish },
  },
  {
    version: CDN, action: 'DescribePurgeTasks', writes: false,
    fields: { PurgeType: oneOfish('url', 'path'), ...historyFields(cdnTimeish), TaskId: jobIdish, Keyword: fc.oneof(urlish, hostish), Status: oneOfish('fail', 'done', 'process'), Area: area },
  },
  {
    version: CDN, action: 'DescribePushTasks', writes: false,
    fields: { ...historyFields(cdnTimeish), TaskId: jobIdish, Keyword: fc.oneof(urlish, hostish), Status: oneOfish('fail', 'done', 'process', 'invalid'), Area: area },
  },
  { version: CDN, action: 'DescribePurgeQuota', writes: false, fields: {} },
  { version: CDN, action: 'DescribePushQuota', writes: false, fields: {} },
];

/** Keys no action defines, and spellings of defined ones that are not them. */
const strayKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'Action', 'Version', 'RequestId', 'zoneid', 'ZoneId ', 'Targets.0', ''), nastyString);

/** The action's input: some of its fields (near-valid or hostile), sometimes a stray or repeated key. */
const paramsFor = (fields: Fields): fc.Arbitrary<[string, unknown][]> =>
  fc
    .tuple(
      fc.record(fields, { requiredKeys: [] }),
      fc.oneof({ weight: 5, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.oneof(strayKey, fc.constantFrom(...Object.keys(fields), 'X')), hostileJson), { minLength: 1, maxLength: 2 }) }),
    )
    .map(([known, stray]) => [...Object.entries(known), ...stray]);

/** Actions are drawn by index, so a printed counterexample names them instead of dumping arbitraries. */
const anyAction = fc.nat(ACTIONS.length - 1);
const spec = (i: number) => ACTIONS[i]!;

/** One call: an action (sometimes a wrong version or name), its params and an encoding. */
const call = anyAction.chain((i) => {
  const a = spec(i);
  return fc.record({
    spec: fc.constant(i),
    version: fc.oneof({ weight: 12, arbitrary: fc.constant(a.version) }, { weight: 1, arbitrary: fc.constantFrom(TEO, CDN, '2019-01-01', `${a.version} `, '__proto__', '') }),
    action: fc.oneof({ weight: 12, arbitrary: fc.constant(a.action) }, { weight: 1, arbitrary: fc.constantFrom(`${a.action}s`, a.action.toLowerCase(), 'constructor', 'hasOwnProperty', '__proto__', 'RefreshCdnUrl') }),
    params: paramsFor(a.fields),
    encoding: fc.constantFrom('json', 'json', 'json', 'json-charset', 'form', 'get', 'multipart', 'v1-get', 'v1-post', 'v1-sha256'),
  });
});

type Encoding = 'json' | 'json-charset' | 'form' | 'get' | 'multipart' | 'v1-get' | 'v1-post' | 'v1-sha256';

describe('API 3.0 decoder and actions under fuzzing', () => {
  const clock = new ManualClock(FUZZ_NOW);
  let s: TestServer;
  let nonce = 1;
  before(async () => {
    s = await startControlPlane(undefined, config(), { clock });
  });
  after(() => s?.close());

  const now = () => Math.floor(clock.now() / 1000);
  const host = () => s.endpoint;

  /** TC3-signed headers for `body` (what any SDK would send). */
  const tc3 = (action: string, version: string, method: 'GET' | 'POST', body: string | Buffer, contentType: string, query = ''): Record<string, string> =>
    signTc3Request({
      secretId: ACME.secretId, secretKey: ACME.secretKey, host: host(), service: version === CDN ? 'cdn' : 'teo',
      action, version, timestamp: now(), body: method === 'GET' ? '' : body, method, query, contentType,
    });

  /** The request as sent by a correctly signing client in `encoding`. */
  function encode(action: string, version: string, params: [string, unknown][], encoding: Encoding): { method: string; path: string; headers: OutgoingHttpHeaders; body?: string | Buffer } {
    if (encoding === 'json' || encoding === 'json-charset') {
      const body = jsonObjectText(params);
      const ct = encoding === 'json' ? 'application/json' : 'application/json; charset=utf-8';
      return { method: 'POST', path: '/', headers: tc3(action, version, 'POST', body, ct), body };
    }
    const pairs = params.flatMap(([k, v]) => flatten(v, k));
    if (encoding === 'form') {
      const body = formText(pairs);
      return { method: 'POST', path: '/', headers: tc3(action, version, 'POST', body, 'application/x-www-form-urlencoded'), body };
    }
    if (encoding === 'get') {
      const query = formText(pairs);
      return { method: 'GET', path: `/?${query}`, headers: tc3(action, version, 'GET', '', 'application/x-www-form-urlencoded', query) };
    }
    if (encoding === 'multipart') {
      const boundary = 'fuzzBoundary7MA4YWxkTrZu0gW';
      const parts = pairs.map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k.toWellFormed().replace(/["\\\r\n]/g, '_')}"\r\n\r\n${v.toWellFormed()}\r\n`);
      const body = Buffer.from(`${parts.join('')}--${boundary}--\r\n`);
      return { method: 'POST', path: '/', headers: tc3(action, version, 'POST', body, `multipart/form-data; boundary=${boundary}`), body };
    }
    // v1: every parameter signed, values raw (§2.5).
    const sm: HmacSignatureMethod = encoding === 'v1-sha256' ? 'HmacSHA256' : 'HmacSHA1';
    const method = encoding === 'v1-get' ? 'GET' : 'POST';
    const flat: Record<string, string> = {};
    for (const [k, v] of pairs) Object.defineProperty(flat, k.toWellFormed(), { value: v.toWellFormed(), enumerable: true, writable: true, configurable: true });
    Object.assign(flat, { Action: action, Version: version, SecretId: ACME.secretId, Timestamp: String(now()), Nonce: String(nonce++), Region: '' });
    if (sm !== 'HmacSHA1') flat['SignatureMethod'] = sm;
    flat['Signature'] = hmacSign(ACME.secretKey, hmacStringToSign(method, host(), '/', flat, sm), sm);
    const text = formText(Object.entries(flat));
    return method === 'GET'
      ? { method, path: `/?${text}`, headers: {} }
      : { method, path: '/', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: text };
  }

  /** §2.6: HTTP 200, exactly application/json, `{"Response":{…,"RequestId"}}`; returns the error code if any. */
  function envelope(a: HttpAnswer): string | undefined {
    const shown = a.body.toString('utf8').slice(0, 300);
    assert.equal(a.status, 200, `HTTP ${a.status}: ${shown}`);
    assert.equal(a.headers['content-type'], 'application/json', shown);
    const json = JSON.parse(a.body.toString('utf8')) as unknown;
    assert.ok(json !== null && typeof json === 'object' && !Array.isArray(json), shown);
    assert.deepEqual(Object.keys(json), ['Response'], shown);
    const r = (json as { Response: Record<string, unknown> }).Response;
    assert.equal(typeof r.RequestId, 'string', shown);
    assert.match(r.RequestId as string, /^[0-9a-f-]{36}$/);
    assert.equal(a.headers['x-tc-requestid'], r.RequestId);
    if (!('Error' in r)) return undefined;
    assert.deepEqual(Object.keys(r).sort(), ['Error', 'RequestId'], shown);
    const e = r.Error as { Code: unknown; Message: unknown };
    assert.equal(typeof e.Code, 'string', shown);
    assert.equal(typeof e.Message, 'string', shown);
    assert.ok(Object.hasOwn(ERRORS, e.Code as string), `undocumented code ${String(e.Code)}: ${shown}`);
    assert.notEqual(e.Code, 'InternalError', `InternalError: ${shown}`);
    return e.Code as string;
  }

  /** Sends, checks the envelope, and checks that a refusal (or a read-only action) wrote nothing. */
  async function check(req: { method: string; path: string; headers: OutgoingHttpHeaders; body?: string | Buffer }, readOnly: boolean): Promise<string | undefined> {
    const before = await storeSnapshot(s, clock.now());
    const a = await send({ port: s.port, ...req });
    const code = envelope(a);
    const after = await storeSnapshot(s, clock.now());
    if (code !== undefined || readOnly) assert.deepEqual(after, before, `${code ?? 'a read-only action'} but the store changed`);
    // Tenants are walls (DESIGN invariant 7): ACME's key never writes GLOBEX's history or quota.
    assert.deepEqual(after.accounts[GLOBEX.appId], before.accounts[GLOBEX.appId], 'another tenant changed');
    return code;
  }

  test('properly signed requests with near-valid and hostile values for every field of every action, in every encoding', async () => {
    const seen = new Map<string, number>();
    await fuzz(
      'api3 signed fields',
      fc.asyncProperty(call, async (c) => {
        const code = await check(encode(c.action, c.version, c.params, c.encoding as Encoding), !spec(c.spec).writes || c.action !== spec(c.spec).action || c.version !== spec(c.spec).version);
        seen.set(code ?? 'ok', (seen.get(code ?? 'ok') ?? 0) + 1);
      }),
      200,
    );
    if (process.env.FUZZ_STATS) console.log(JSON.stringify([...seen].sort()));
    // The generator must get past authentication and sometimes succeed, or it fuzzes nothing.
    assert.ok((seen.get('ok') ?? 0) > 0, `no request succeeded: ${JSON.stringify([...seen])}`);
    assert.ok(![...seen.keys()].some((k) => k.startsWith('AuthFailure')), `signing failed: ${JSON.stringify([...seen])}`);
  });

  const garbageBody: fc.Arbitrary<Buffer> = fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    fc.constantFrom(
      '', ' ', 'null', 'true', '1', '"x"', '[]', '[{}]', '{', '}', '{"ZoneId":', '{"a":1,}', "{'a':1}", '{"a":1}{"b":2}', '{"a":1e999}', '{"Offset":1e400}',
      '{"__proto__":{"Targets":["x"]}}', '{"constructor":{"prototype":{}}}', '\ufeff{}', '{"ZoneId":"\\ud800"}', '{"ZoneId":"\\u0000"}',
      `${'['.repeat(40)}${']'.repeat(40)}`, `{"a":${'['.repeat(5000)}`, `{"a":"${'\\'.repeat(3)}"}`, `{"Targets":[${'"x",'.repeat(3000)}"x"]}`,
      '{"ZoneId":"zone-acme0001","ZoneId":"zone-acme0001"}', `{"ZoneId":"${ACME.zoneId}","Type":"purge_url","Targets":["http://${ACME.host}/a"]`,
    ).map((t) => Buffer.from(t)),
    fc.constantFrom([0xff, 0xfe], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x7b, 0x22, 0xe2, 0x82, 0x22, 0x3a, 0x31, 0x7d], [0xef, 0xbb, 0xbf, 0x7b, 0x7d]).map((b) => Buffer.from(b)),
    fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
    fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.nat(40), fc.constantFrom('', '"', '{', ']', '\\', '\u0000', ',')).map(([v, at, ins]) => {
      const t = JSON.stringify({ ZoneId: ACME.zoneId, Targets: [v] });
      return Buffer.from(t.slice(0, at) + ins + t.slice(at));
    }),
  );
  const contentType = fc.constantFrom(
    'application/json', 'application/json; charset=utf-8', 'application/json;charset=latin1', 'APPLICATION/JSON', ' application/json', 'application/json, text/plain',
    'text/plain', 'text/json', '', ';', 'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=gbk', 'multipart/form-data',
    'multipart/form-data; boundary=', 'multipart/form-data; boundary=x', `multipart/form-data; boundary="${'b'.repeat(71)}"`, 'application/octet-stream',
  );

  test('properly signed garbage bodies under every content type never crash the decoder', async () => {
    await fuzz(
      'api3 signed garbage bodies',
      fc.asyncProperty(anyAction, garbageBody, contentType, async (i, body, ct) => {
        const a = spec(i);
        await check({ method: 'POST', path: '/', headers: tc3(a.action, a.version, 'POST', body, ct), body }, !a.writes);
      }),
      100,
    );
  });

  const headerValue = fc.oneof(
    fc.constantFrom('', ' ', 'x', '0', '-1', '1e3', '99999999999999', TEO, CDN, 'CreatePurgeTask', 'UNSIGNED-PAYLOAD', 'application/json', 'ap-guangzhou', 'zh-CN'),
    fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', ',', ';', '=', '/', '-', '\t', 'é'), maxLength: 30 }),
  );
  const authorization = fc.oneof(
    fc.tuple(
      fc.constantFrom('TC3-HMAC-SHA256', 'tc3-hmac-sha256', 'TC3-HMAC-SHA1', 'Bearer', '', 'TC3-HMAC-SHA256 TC3-HMAC-SHA256'),
      fc.constantFrom(ACME.secretId, GLOBEX.secretId, '', 'AKIDunknown', `${ACME.secretId} `),
      fc.constantFrom('2026-03-01', '2026-02-28', '2026-3-1', '', 'x'),
      fc.constantFrom('teo', 'cdn', '', '127', 'a/b'),
      fc.constantFrom('tc3_request', 'tc4_request', ''),
      fc.constantFrom('content-type;host', 'host;content-type', 'content-type', 'host', 'content-type;host;x-tc-action', 'Content-Type;Host', '', ';', 'content-type;host;host'),
      fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.constantFrom('', 'xyz', '0'.repeat(63), 'A'.repeat(64))),
      fc.constantFrom(', ', ',', ' , ', ',,', ', Extra=1, '),
    ).map(([alg, id, date, svc, term, sh, sig, sep]) => `${alg} Credential=${id}/${date}/${svc}/${term}${sep}SignedHeaders=${sh}${sep}Signature=${sig}`),
    headerValue,
  );
  const HEADER_NAMES = ['authorization', 'x-tc-action', 'x-tc-version', 'x-tc-timestamp', 'x-tc-region', 'x-tc-language', 'x-tc-token', 'x-tc-content-sha256', 'content-type', 'host', 'x-tc-requestclient'] as const;
  const mutation = fc.oneof(
    fc.record({ op: fc.constant('set' as const), name: fc.constantFrom(...HEADER_NAMES), value: headerValue }),
    fc.record({ op: fc.constant('set' as const), name: fc.constant('authorization' as const), value: authorization }),
    fc.record({ op: fc.constant('delete' as const), name: fc.constantFrom(...HEADER_NAMES) }),
    // Node's client cannot send two Host lines; the edge fuzzer does that over a raw socket.
    fc.record({ op: fc.constant('repeat' as const), name: fc.constantFrom(...HEADER_NAMES.filter((h) => h !== 'host')), value: headerValue }),
    fc.record({ op: fc.constant('timestamp' as const), delta: fc.constantFrom(-86_400, -301, -300, -1, 0, 1, 299, 300, 301, 86_400 * 400) }),
  );

  test('signed requests with their headers mutated afterwards (Authorization shapes, X-TC-*, Content-Type, Host)', async () => {
    await fuzz(
      'api3 header mutations',
      fc.asyncProperty(call, fc.array(mutation, { minLength: 1, maxLength: 3 }), async (c, mutations) => {
        const req = encode(c.action, c.version, c.params, c.encoding === 'json-charset' ? 'json-charset' : 'json');
        const headers: Record<string, string | string[]> = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
        for (const m of mutations) {
          if (m.op === 'delete') delete headers[m.name];
          else if (m.op === 'set') headers[m.name] = m.value;
          else if (m.op === 'repeat') headers[m.name] = [String(headers[m.name] ?? ''), m.value];
          else headers['x-tc-timestamp'] = String(now() + m.delta);
        }
        // A Host is always sent: HTTP/1.1 requires one (its value may still be wrong).
        if (headers.host === undefined || headers.host === '') headers.host = host();
        await check({ ...req, headers }, !spec(c.spec).writes);
      }),
      150,
    );
  });

  const v1Key = fc.oneof(fc.constantFrom('Action', 'Version', 'SecretId', 'Timestamp', 'Nonce', 'Signature', 'SignatureMethod', 'Region', 'Token', 'Language', 'RequestClient', 'ZoneId', 'Targets.0', 'Targets.a', 'Targets..0', 'a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q', 'Targets.01', '__proto__.x'), nastyString);

  test('unsigned or v1 query strings and forms of arbitrary parameters', async () => {
    await fuzz(
      'api3 unsigned v1 params',
      fc.asyncProperty(
        fc.array(fc.tuple(v1Key, fc.oneof(nastyString, fc.constantFrom(ACME.secretId, String(now()), 'HmacSHA1', 'HmacSHA256', 'TC2-HmacSHA256', TEO, 'CreatePurgeTask'))), { maxLength: 8 }),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'),
        fc.constantFrom('application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json', 'text/plain', ''),
        fc.boolean(),
        async (pairs, method, ct, rawEncoding) => {
          // Raw: the keys and values exactly as generated, `%` and `&` included (a hand-written script).
          const text = rawEncoding ? pairs.map(([k, v]) => `${k}=${v}`.toWellFormed()).join('&').replace(/[^\x21-\x7e]/g, (c) => encodeComponent(c)) : formText(pairs);
          const req = method === 'GET'
            ? { method, path: `/?${text}`, headers: {} }
            : { method, path: '/', headers: ct === '' ? {} : { 'content-type': ct }, body: text };
          await check(req, false);
        },
      ),
      100,
    );
  });

  test('a HEAD request, of any query size, is answered with the envelope headers and no body (RFC 9110 §9.3.2)', async () => {
    await fuzz(
      'api3 HEAD framing',
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('a'.repeat(70_000), `Action=${'x'.repeat(66_000)}`)), async (query) => {
        const a = await sendRaw(s.port, `HEAD /?${encodeComponent(query)} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
        assert.ok(a.closed, 'no answer within the bound');
        const text = a.bytes.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        assert.ok(end > 0, `no complete head: ${JSON.stringify(text.slice(0, 200))}`);
        assert.equal(a.status, 200, text.slice(0, 200));
        assert.match(text.slice(0, end), /\r\ncontent-type: application\/json\r\n/i);
        assert.equal(text.slice(end + 4), '', `a HEAD answer carries a body: ${JSON.stringify(text.slice(0, 400))}`);
      }),
      30,
    );
  });
});
