// Round trips with Tencent's real clients: the Node SDKs (TC3 POST/GET, HmacSHA1/HmacSHA256) and the
// legacy qcloudapi-sdk (v2, sha1/sha256, GET/POST) talk to a node:http server running our decoders.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import cdnSdk from 'tencentcloud-sdk-nodejs-cdn';
import teoSdk from 'tencentcloud-sdk-nodejs-teo';
import { systemClock } from '../../src/shared/clock.ts';
import { readBody } from '../../src/protocols/http-body.ts';
import type { JsonReply } from '../../src/protocols/json-reply.ts';
import type { Credential } from '../../src/protocols/request-parts.ts';
import { renderApi3Error, renderApi3Success } from '../../src/protocols/tc3/api3-envelope.ts';
import { decodeApi3Request, type Api3Request } from '../../src/protocols/tc3/api3-request.ts';
import { renderV2Error, renderV2Success } from '../../src/protocols/v2/v2-envelope.ts';
import { decodeV2Request, type V2Request } from '../../src/protocols/v2/v2-request.ts';

// §5.1 gotcha: with http_proxy set the SDKs send even localhost through a proxy.
for (const name of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) delete process.env[name];

const require = createRequire(import.meta.url);

/** The slice of qcloudapi-sdk@0.2.1 used here (the package ships no types). */
interface QcloudApi {
  request(data: Record<string, unknown>, cb: (err: Error | null, body: unknown) => void): void;
}
type QcloudApiCtor = new (defaults: Record<string, unknown>) => QcloudApi;
const Capi = require('qcloudapi-sdk') as QcloudApiCtor;

const SECRET_ID = 'AKIDEdgePurgeTest0000000000000000001';
const SECRET_KEY = 'edgepurge-test-secret-key-0000001';
const credentials = new Map<string, Credential>([[SECRET_ID, { secretKey: SECRET_KEY, appId: 1250000000 }]]);
const lookupSecret = (id: string): Credential | undefined => credentials.get(id);

const decoded: (Api3Request | V2Request)[] = [];
let endpoint = '';

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  void handle(req).then((reply) => {
    res.writeHead(reply.status, reply.headers).end(reply.body);
  });
});
const fail = (_msg: string, err: unknown): void => assert.fail(err instanceof Error ? err : String(err));

async function handle(req: IncomingMessage): Promise<JsonReply> {
  const legacy = (req.url ?? '').startsWith('/v2/index.php');
  try {
    const body = await readBody(req, 1 << 20);
    const input = { method: req.method ?? '', rawUrl: req.url ?? '', headers: req.headers, body, remoteAddress: req.socket.remoteAddress ?? '' };
    if (legacy) {
      const r = decodeV2Request(input, { clock: systemClock, lookupSecret });
      decoded.push(r);
      return renderV2Success({ count: 1, task_id: '1480069888795584532', echo: r.params });
    }
    const r = decodeApi3Request(input, { clock: systemClock, lookupSecret });
    decoded.push(r);
    return renderApi3Success({ Echo: r }, 'req-1');
  } catch (err) {
    return legacy ? renderV2Error(err, fail) : renderApi3Error(err, 'req-1', fail);
  }
}

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const last = (): Api3Request | V2Request => decoded.at(-1)!;

function teoClient(signMethod: string, reqMethod: 'POST' | 'GET', extra: { secretKey?: string; region?: string; language?: string } = {}) {
  return new teoSdk.teo.v20220901.Client({
    credential: { secretId: SECRET_ID, secretKey: extra.secretKey ?? SECRET_KEY },
    region: extra.region ?? '',
    profile: {
      signMethod: signMethod as 'TC3-HMAC-SHA256',
      httpProfile: { endpoint, protocol: 'http://', reqMethod },
      ...(extra.language === undefined ? {} : { language: extra.language as 'en-US' }),
    },
  });
}

const purgeInput = {
  ZoneId: 'zone-2o3h21ed8bpu',
  Type: 'purge_url',
  Method: 'invalidate',
  Targets: ['https://www.example.com/a b.jpg', 'https://www.example.com/中文.jpg?x=1&y=2'],
};

describe('tencentcloud-sdk-nodejs-teo against our API 3.0 decoder', () => {
  test('TC3-HMAC-SHA256 POST JSON: scope service is the endpoint label "127", signed host without port', async () => {
    const out = await teoClient('TC3-HMAC-SHA256', 'POST').CreatePurgeTask(purgeInput);
    assert.equal(out.RequestId, 'req-1');
    const r = last() as Api3Request;
    assert.equal(r.action, 'CreatePurgeTask');
    assert.equal(r.version, '2022-09-01');
    assert.equal(r.signatureMethod, 'TC3-HMAC-SHA256');
    assert.deepEqual(r.params, purgeInput);
    assert.equal(r.secretId, SECRET_ID);
    assert.equal(r.appId, 1250000000);
    assert.equal(r.region, undefined);
    assert.equal(r.clientIp, '127.0.0.1');
  });

  test('TC3-HMAC-SHA256 GET: flattened query rebuilt into arrays and objects', async () => {
    await teoClient('TC3-HMAC-SHA256', 'GET', { region: 'ap-guangzhou', language: 'en-US' }).DescribePurgeTasks({
      ZoneId: 'zone-1',
      Limit: 20,
      Filters: [{ Name: 'target', Values: ['https://www.example.com/中文.jpg', 'a+b c'] }],
    });
    const r = last() as Api3Request;
    assert.equal(r.action, 'DescribePurgeTasks');
    assert.equal(r.region, 'ap-guangzhou');
    assert.equal(r.language, 'en-US');
    assert.deepEqual(r.params, {
      ZoneId: 'zone-1',
      Limit: '20',
      Filters: [{ Name: 'target', Values: ['https://www.example.com/中文.jpg', 'a+b c'] }],
    });
  });

  for (const signMethod of ['HmacSHA1', 'HmacSHA256'] as const) {
    for (const reqMethod of ['POST', 'GET'] as const) {
      test(`v1 ${signMethod} over ${reqMethod}: common params stripped, the rest unflattened`, async () => {
        await teoClient(signMethod, reqMethod, { region: 'ap-guangzhou', language: 'zh-CN' }).CreatePurgeTask({
          ...purgeInput,
          CacheTag: { Domains: ['www.example.com', 'img.example.com'] },
        });
        const r = last() as Api3Request;
        assert.equal(r.signatureMethod, signMethod);
        assert.equal(r.action, 'CreatePurgeTask');
        assert.equal(r.version, '2022-09-01');
        assert.equal(r.region, 'ap-guangzhou');
        assert.equal(r.language, 'zh-CN');
        assert.deepEqual(r.params, { ...purgeInput, CacheTag: { Domains: ['www.example.com', 'img.example.com'] } });
      });
    }
  }

  test('a wrong secret key reaches the SDK as AuthFailure.SignatureFailure (TC3 and v1)', async () => {
    for (const signMethod of ['TC3-HMAC-SHA256', 'HmacSHA256']) {
      await assert.rejects(teoClient(signMethod, 'POST', { secretKey: 'wrong' }).CreatePurgeTask(purgeInput), {
        code: 'AuthFailure.SignatureFailure',
        requestId: 'req-1',
      });
    }
  });

  test('an unknown SecretId reaches the SDK as AuthFailure.SecretIdNotFound', async () => {
    const client = new teoSdk.teo.v20220901.Client({
      credential: { secretId: 'AKIDunknown', secretKey: SECRET_KEY },
      region: '',
      profile: { httpProfile: { endpoint, protocol: 'http://' } },
    });
    await assert.rejects(client.DescribePurgeTasks({ ZoneId: 'z' }), { code: 'AuthFailure.SecretIdNotFound' });
  });
});

describe('tencentcloud-sdk-nodejs-cdn against our API 3.0 decoder', () => {
  test('TC3 POST PurgeUrlsCache decodes with version 2018-06-06', async () => {
    const client = new cdnSdk.cdn.v20180606.Client({
      credential: { secretId: SECRET_ID, secretKey: SECRET_KEY },
      region: '',
      profile: { httpProfile: { endpoint, protocol: 'http://' } },
    });
    await client.PurgeUrlsCache({ Urls: ['https://www.example.com/中文.jpg'], UrlEncode: true });
    const r = last() as Api3Request;
    assert.equal(r.action, 'PurgeUrlsCache');
    assert.equal(r.version, '2018-06-06');
    assert.deepEqual(r.params, { Urls: ['https://www.example.com/中文.jpg'], UrlEncode: true });
  });
});

function capiCall(defaults: Record<string, unknown>, data: Record<string, unknown>): Promise<unknown> {
  const capi = new Capi({ SecretId: SECRET_ID, SecretKey: SECRET_KEY, serviceType: 'cdn', protocol: 'http', host: endpoint, ...defaults });
  return new Promise((resolve, reject) => capi.request(data, (err, body) => (err ? reject(err) : resolve(body))));
}

describe('qcloudapi-sdk@0.2.1 against our legacy v2 decoder', () => {
  const urls = ['https://www.example.com/a b.jpg', 'https://www.example.com/中文.jpg'];
  for (const signatureMethod of ['sha1', 'sha256'] as const) {
    for (const method of ['POST', 'GET'] as const) {
      test(`RefreshCdnUrl signed with ${signatureMethod} over ${method}`, async () => {
        const body = await capiCall({ signatureMethod, method }, { Action: 'RefreshCdnUrl', urls });
        assert.deepEqual(body, {
          retcode: 0,
          errmsg: 'ok',
          code: 0,
          message: '',
          codeDesc: 'Success',
          data: { count: 1, task_id: '1480069888795584532', echo: { urls } },
        });
        const r = last() as V2Request;
        assert.equal(r.action, 'RefreshCdnUrl');
        assert.deepEqual(r.params, { urls });
        assert.equal(r.appId, 1250000000);
      });
    }
  }

  test('the opt-in TC2-HmacSHA256 mode verifies too', async () => {
    const body = await capiCall({ signatureMethod: 'sha256' }, { Action: 'RefreshCdnDir', SignatureMethod: 'TC2-HmacSHA256', dirs: ['https://www.example.com/a/'], type: 2 });
    assert.equal((body as { code: number }).code, 0);
    assert.deepEqual((last() as V2Request).params, { dirs: ['https://www.example.com/a/'], type: '2' });
  });

  test('a wrong key gets the legacy 4100 envelope', async () => {
    const body = await capiCall({ SecretKey: 'wrong' }, { Action: 'RefreshCdnUrl', urls });
    assert.equal((body as { code: number }).code, 4100);
    assert.equal((body as { codeDesc: string }).codeDesc, 'AuthFailure.SignatureFailure');
  });
});
