// Property-based fuzzing of the legacy endpoint (/v2/index.php) against a real control plane: properly
// signed GET/POST/multipart requests with hostile values for every parameter of every v2 action, replays,
// signature-parameter mutations and unsigned garbage. Every answer is the §1.4 envelope
// `{"code","message","codeDesc"}` with a registered code, never 6000/InternalError, and a refusal
// writes nothing (DESIGN invariant 8).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { hmacSign, hmacStringToSign, type HmacSignatureMethod } from '../../src/protocols/hmac-signature.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { ERRORS, type LegacyCode } from '../../src/shared/errors.ts';
import { ACME, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { config } from '../api3/fixtures.ts';
import { encodeComponent, flatten, formText, fuzz, hostileJson, nastyString, send, type HttpAnswer } from './fuzz.ts';
import { storeSnapshot } from './store-snapshot.ts';
import { cdnTimeish, FUZZ_NOW, hostish, intish, jobIdish, oneOfish, strish, targetList, urlish } from './values.ts';

type Fields = Record<string, fc.Arbitrary<unknown>>;

/** Legacy integers arrive as form text: mostly plausible ones, sometimes anything. */
const smallInt = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: -1, max: 1001 }).map(String) }, { weight: 1, arbitrary: intish });
const history = { startDate: cdnTimeish, endDate: cdnTimeish, taskId: jobIdish, url: urlish, offset: smallInt, limit: smallInt };

/** Every action of src/actions/v2/registry.ts with a near-valid-or-hostile value for each parameter. */
const ACTIONS: ReadonlyArray<{ action: string; writes: boolean; fields: Fields; required?: string[] }> = [
  { action: 'RefreshCdnUrl', writes: true, fields: { urls: targetList(urlish) }, required: ['urls'] },
  {
    action: 'RefreshCdnDir', writes: true, required: ['dirs'],
    fields: { dirs: targetList(urlish), type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('1', '2', 1, 2, '0', '3', ' 1', '01') }, { weight: 1, arbitrary: hostileJson }) },
  },
  { action: 'CdnUrlPusher', writes: true, fields: { urls: targetList(urlish), limitRate: smallInt }, required: ['urls'] },
  { action: 'GetCdnRefreshLog', writes: false, fields: { ...history, host: hostish } },
  {
    action: 'GetPushLogs', writes: false,
    fields: { ...history, hosts: targetList(hostish), status: fc.oneof(targetList(oneOfish('init', 'process', 'inprocess', 'done', 'fail')), oneOfish('done')), keyword: strish },
  },
];

/** The ways a list reaches the server: `name.N` (documented), `name_N` (PHP-mangled), or one bare `name`. */
type ListStyle = 'dot' | 'underscore' | 'bare';

/** Form pairs for one parameter value: lists as `urls.0`…, objects flattened, scalars as text. */
function pairsOf(name: string, value: unknown, style: ListStyle): [string, string][] {
  if (Array.isArray(value) && style === 'bare' && value.length === 1 && typeof value[0] !== 'object') return [[name, String(value[0])]];
  const pairs = flatten(value, name);
  return style === 'underscore' ? pairs.map(([k, v]) => [k.replaceAll('.', '_'), v]) : pairs;
}

const strayKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'Action', 'SecretId', 'Region', 'urls', 'urls.0', 'urls_0', 'urls.1', 'dirs.a', '_urls', 'Urls', 'url.0', '.', '_'), nastyString);

const OTHER_ACTIONS = ['refreshCdnUrl', 'RefreshCdnUrls', 'DescribeCdnHosts', '__proto__', 'constructor', 'PurgeUrlsCache', ''];

const call = fc.nat(ACTIONS.length - 1).chain((i) =>
  fc.record({
    index: fc.constant(i),
    action: fc.oneof({ weight: 12, arbitrary: fc.constant(ACTIONS[i]!.action) }, { weight: 1, arbitrary: fc.constantFrom(...OTHER_ACTIONS) }),
    // Required parameters are sent nine times in ten: a missing one stops the decoder before the rest.
    fields: fc.record(ACTIONS[i]!.fields, { requiredKeys: ACTIONS[i]!.required ?? [] }),
    drop: fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...Object.keys(ACTIONS[i]!.fields)) }),
    stray: fc.oneof({ weight: 5, arbitrary: fc.constant<[string, unknown][]>([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(strayKey, fc.oneof(nastyString, hostileJson)), { minLength: 1, maxLength: 2 }) }),
    style: fc.constantFrom<ListStyle>('dot', 'dot', 'underscore', 'bare'),
    encoding: fc.constantFrom('post', 'post', 'get', 'multipart'),
    signatureMethod: fc.constantFrom<HmacSignatureMethod>('HmacSHA1', 'HmacSHA256'),
  }),
);

type Call = typeof call extends fc.Arbitrary<infer T> ? T : never;

/** Whether a call may write: a known writing action, sent under its own name. */
const writes = (c: { index: number; action: string }): boolean => ACTIONS[c.index]!.writes && ACTIONS[c.index]!.action === c.action;

describe('legacy v2 decoder and actions under fuzzing', () => {
  const clock = new ManualClock(FUZZ_NOW);
  let s: TestServer;
  let nonce = 1;
  before(async () => {
    s = await startControlPlane(undefined, config(), { clock });
  });
  after(() => s?.close());

  interface Signed {
    readonly method: 'GET' | 'POST';
    readonly params: [string, string][];
  }

  /** Signs flat params as §1.3 says: every parameter, keys with `_` as `.`, sorted, raw values, Host with port. */
  function sign(pairs: [string, string][], method: 'GET' | 'POST', sm: HmacSignatureMethod, extra: Record<string, string> = {}): Signed {
    const all: [string, string][] = [
      ['Region', ''], ['SecretId', ACME.secretId], ['Timestamp', String(Math.floor(clock.now() / 1000))], ['Nonce', String(nonce++)], ['RequestClient', 'EdgePurgeFuzz'],
      ...Object.entries(extra), ...pairs.map(([k, v]) => [k.toWellFormed(), v.toWellFormed()] as [string, string]),
    ];
    if (sm !== 'HmacSHA1') all.push(['SignatureMethod', sm]);
    const flat: Record<string, string> = {};
    for (const [k, v] of all) Object.defineProperty(flat, k, { value: v, enumerable: true, writable: true, configurable: true });
    all.push(['Signature', hmacSign(ACME.secretKey, hmacStringToSign(method, s.endpoint, '/v2/index.php', flat, sm), sm)]);
    return { method, params: all };
  }

  function request(r: Signed, encoding: string): { method: string; path: string; headers: Record<string, string>; body?: string | Buffer } {
    if (r.method === 'GET') return { method: 'GET', path: `/v2/index.php?${formText(r.params)}`, headers: {} };
    if (encoding === 'multipart') {
      const b = 'fuzzV2Boundary';
      const parts = r.params.map(([k, v]) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
      return { method: 'POST', path: '/v2/index.php', headers: { 'content-type': `multipart/form-data; boundary=${b}` }, body: Buffer.from(`${parts.join('')}--${b}--\r\n`) };
    }
    return { method: 'POST', path: '/v2/index.php', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: formText(r.params) };
  }

  /** §1.4: HTTP 200, JSON `{"code","message","codeDesc"}` (+ `data` on success); returns the failing code. */
  function envelope(a: HttpAnswer): { code: number; codeDesc: string } | undefined {
    const shown = a.body.toString('utf8').slice(0, 300);
    assert.equal(a.status, 200, `HTTP ${a.status}: ${shown}`);
    assert.equal(a.headers['content-type'], 'application/json', shown);
    const body = JSON.parse(a.body.toString('utf8')) as Record<string, unknown>;
    assert.ok(body !== null && typeof body === 'object' && !Array.isArray(body), shown);
    assert.equal(typeof body.code, 'number', shown);
    assert.equal(typeof body.message, 'string', shown);
    assert.equal(typeof body.codeDesc, 'string', shown);
    if (body.code === 0) {
      assert.equal(body.codeDesc, 'Success', shown);
      return undefined;
    }
    assert.deepEqual(Object.keys(body).sort(), ['code', 'codeDesc', 'message'], shown);
    const code = body.code as number;
    const codeDesc = body.codeDesc as string;
    assert.notEqual(code, ERRORS.InternalError.legacy.code, `InternalError: ${shown}`);
    assert.notEqual(codeDesc, 'InternalError', `InternalError: ${shown}`);
    // The code and codeDesc are one registry entry's legacy rendering: `(module)` + module code, or the dotted code.
    const match = Object.entries(ERRORS).some(([dotted, e]) => {
      const legacy: LegacyCode = e.legacy;
      return legacy.code === code && (legacy.module === undefined ? codeDesc === dotted : codeDesc === String(legacy.module) && (body.message as string).startsWith(`(${legacy.module})`));
    });
    assert.ok(match, `not a registered legacy rendering: ${shown}`);
    return { code, codeDesc };
  }

  async function check(req: ReturnType<typeof request>, readOnly: boolean): Promise<string> {
    const before = await storeSnapshot(s, clock.now());
    const answer = envelope(await send({ port: s.port, ...req }));
    const after = await storeSnapshot(s, clock.now());
    if (answer !== undefined || readOnly) assert.deepEqual(after, before, `${answer ? JSON.stringify(answer) : 'a read-only action'} but the store changed`);
    assert.deepEqual(after.accounts[GLOBEX.appId], before.accounts[GLOBEX.appId], 'another tenant changed');
    return answer === undefined ? 'ok' : `${answer.code}/${answer.codeDesc}`;
  }

  /** Multipart names cannot carry `"`, `\\`, CR or LF unescaped: such keys are renamed before signing. */
  const multipartName = (k: string): string => k.replace(/["\\\r\n]/g, '_');
  const paramsOf = (c: Call): [string, string][] => named(c.encoding, [
    ['Action', c.action],
    ...Object.entries(c.fields).filter(([k]) => k !== c.drop).flatMap(([k, v]) => pairsOf(k, v, c.style)),
    ...c.stray.flatMap(([k, v]) => pairsOf(k, v, c.style)),
  ]);
  /**
   * GET queries over 64 KB are refused by the HTTP parser before the decoder (see the over-long GET test
   * below): such calls go as POST, so the values still reach the decoder.
   */
  const encodingOf = (c: Call): Call['encoding'] =>
    c.encoding === 'get' && formText(paramsOf({ ...c, encoding: 'post' })).length > 60_000 ? 'post' : c.encoding;
  const signedCall = (c: Call) => {
    const encoding = encodingOf(c);
    return { encoding, signed: sign(paramsOf({ ...c, encoding }), encoding === 'get' ? 'GET' : 'POST', c.signatureMethod) };
  };
  const named = (encoding: string, pairs: [string, string][]): [string, string][] =>
    encoding === 'multipart' ? pairs.map(([k, v]) => [multipartName(k), v]) : pairs;

  test('properly signed requests with near-valid and hostile values for every parameter of every action', async () => {
    const seen = new Map<string, number>();
    await fuzz(
      'v2 signed fields',
      fc.asyncProperty(call, async (c) => {
        const { encoding, signed } = signedCall(c);
        const outcome = await check(request(signed, encoding), !writes(c));
        seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
        if (process.env.FUZZ_STATS && outcome.startsWith('4100')) console.log('SIGFAIL', JSON.stringify(signed.params).slice(0, 600));
      }),
      150,
    );
    if (process.env.FUZZ_STATS) console.log(JSON.stringify([...seen].sort()));
    assert.ok((seen.get('ok') ?? 0) > 0, `no request succeeded: ${JSON.stringify([...seen])}`);
    assert.ok(![...seen.keys()].some((k) => k.startsWith('4100') || k.startsWith('4200')), `signing failed: ${JSON.stringify([...seen])}`);
  });

  test('a replayed request (same Nonce and Timestamp) is refused and writes nothing, whatever it carried', async () => {
    await fuzz(
      'v2 replay',
      fc.asyncProperty(call, async (c) => {
        const { encoding, signed } = signedCall(c);
        const req = request(signed, encoding);
        const first = envelope(await send({ port: s.port, ...req }));
        const second = await check(req, true);
        // A request the decoder refuses before the nonce check may be refused the same way again.
        if (first === undefined) assert.equal(second, '4500/AuthFailure.ReplayAttack');
        else assert.notEqual(second, 'ok');
      }),
      40,
    );
  });

  const commonMutation = fc.oneof(
    fc.record({ drop: fc.constantFrom('Action', 'SecretId', 'Timestamp', 'Nonce', 'Signature', 'SignatureMethod', 'Region', 'RequestClient') }),
    fc.record({
      set: fc.constantFrom('Action', 'SecretId', 'Timestamp', 'Nonce', 'Signature', 'SignatureMethod', 'Region', 'Token', 'RequestClient'),
      value: fc.oneof(nastyString, fc.constantFrom('HmacSHA1', 'HmacSHA256', 'TC2-HmacSHA256', 'hmacsha1', GLOBEX.secretId, '-1', '0', '99999999999999999999', '1e3', String(Math.floor(FUZZ_NOW / 1000) - 7201))),
    }),
    fc.record({ duplicate: fc.constantFrom('Action', 'SecretId', 'Nonce', 'Signature', 'urls.0', 'urls_0') }),
  );

  test('signed requests whose common parameters are dropped, changed or repeated after signing', async () => {
    await fuzz(
      'v2 common-parameter mutations',
      fc.asyncProperty(call, fc.array(commonMutation, { minLength: 1, maxLength: 3 }), async (c, mutations) => {
        const { encoding, signed } = signedCall(c);
        let params = signed.params;
        for (const m of mutations) {
          if ('drop' in m) params = params.filter(([k]) => k !== m.drop);
          else if ('set' in m) params = [...params.filter(([k]) => k !== m.set), [m.set, m.value]];
          else params = [...params, [m.duplicate, params.find(([k]) => k === m.duplicate)?.[1] ?? 'x']];
        }
        // Changing a signed parameter may leave it valid only by chance; a write then is still allowed.
        // Over 64 KB a GET never reaches the decoder (tested on its own below): send those as POST.
        const method = signed.method === 'GET' && formText(params).length > 60_000 ? 'POST' : signed.method;
        await check(request({ method, params }, encoding), !writes(c));
      }),
      100,
    );
  });

  test('unsigned garbage: raw query strings, bodies and content types', async () => {
    await fuzz(
      'v2 unsigned garbage',
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.array(fc.tuple(fc.oneof(strayKey, fc.constantFrom('Action', 'Nonce', 'Timestamp', 'SecretId', 'Signature')), nastyString), { maxLength: 6 }).map((p) => p.map(([k, v]) => `${k}=${v}`).join('&')),
          fc.constantFrom('%', '%%', 'a=%zz', '&&&', '=&=', 'a=1&a=2', 'urls.0=1&urls_0=2', 'a.=1', '.a=1', 'a..b=1', `${'a.'.repeat(20)}b=1`, 'urls.1=x', 'urls.0=a&urls.a=b', 'urls=1&urls.0=2'),
        ),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        fc.constantFrom('application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'multipart/form-data', 'application/json', 'text/plain', ''),
        async (text, method, ct) => {
          const raw = text.toWellFormed().replace(/[^\x21-\x7e]/g, (ch) => encodeComponent(ch));
          const req = method === 'GET' && raw.length < 60_000
            ? { method, path: `/v2/index.php?${raw}`, headers: {} as Record<string, string> }
            : { method, path: '/v2/index.php', headers: (ct === '' ? {} : { 'content-type': ct }) as Record<string, string>, body: text };
          await check(req, true);
        },
      ),
      100,
    );
  });

  test('a GET whose query passes the 64 KB header limit still gets the legacy envelope (§1.4), not API 3.0\'s', async () => {
    await fuzz(
      'v2 over-long GET',
      fc.asyncProperty(fc.integer({ min: 65_600, max: 80_000 }), fc.constantFrom('urls.0', 'Action', 'x'), async (length, key) => {
        await check({ method: 'GET', path: `/v2/index.php?${key}=${'u'.repeat(length)}`, headers: {} }, true);
      }),
      10,
    );
  });
});
