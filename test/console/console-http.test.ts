// The console over HTTP without a browser: security headers, sessions, CSRF and origin checks, the
// sign-in brake, tenant walls, and the API's own validation messages on the submit form.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { assertOk, config, rawCall, TEO } from '../api3/fixtures.ts';
import { ACME, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { ConsoleClient, pageError } from './console-client.ts';

const FAST_SIGN_IN = { console: { signIn: { failureDelayMs: 0, burst: 3 } } };

async function acmeJob(s: TestServer): Promise<string> {
  const r = assertOk(await rawCall(s, ACME, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/secret-acme-path`] } }));
  return String(r.JobId);
}

async function jobCount(s: TestServer, appId: number): Promise<number> {
  return (await s.store.listTasks({ appId, offset: 0, limit: 1 })).total;
}

describe('console: headers, assets, sign-in', () => {
  test('every page and asset carries the CSP and no page has inline script, style or handlers', async (t) => {
    const s = await startControlPlane(t, config(), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    await c.signIn(ACME);
    const job = await acmeJob(s);
    for (const path of ['/console/sign-in', '/console/history', '/console/purge', '/console/quota', '/console/fleet', `/console/jobs/${job}`, '/console/nope']) {
      const res = await c.get(path);
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'; style-src 'self'/, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      const page = await res.text();
      assert.doesNotMatch(page, /<script(?![^>]*\bsrc=)/, `${path}: inline script`);
      assert.doesNotMatch(page, /\sstyle=|<style|\son[a-z]+=/i, `${path}: inline style or handler`);
    }
    for (const [name, type] of [['console.js', 'text/javascript'], ['console.css', 'text/css'], ['favicon.svg', 'image/svg+xml']] as const) {
      const res = await c.get(`/console/assets/${name}`);
      assert.equal(res.status, 200);
      assert.ok((res.headers.get('content-type') ?? '').startsWith(type), name);
      const etag = res.headers.get('etag')!;
      assert.equal((await c.get(`/console/assets/${name}`, { 'if-none-match': etag })).status, 304);
    }
    assert.equal((await c.get('/console/assets/../../package.json')).status, 404);
  });

  test('signed out: pages redirect to sign-in (keeping the page), streams and posts are refused, nothing is written', async (t) => {
    const s = await startControlPlane(t, config(), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    const job = await acmeJob(s);
    assert.equal((await c.get('/console/history')).headers.get('location'), '/console/sign-in?next=%2Fconsole%2Fhistory');
    assert.equal((await c.get('/console/')).headers.get('location'), '/console/sign-in');
    assert.equal((await c.get(`/console/jobs/${job}/events`)).status, 401);
    assert.equal((await c.get('/console/fleet/events')).status, 401);
    const before = await jobCount(s, ACME.appId);
    const res = await c.post('/console/purge', { type: 'purge_host', zone: ACME.zoneId, targets: ACME.host });
    assert.equal(res.status, 303);
    assert.equal(await jobCount(s, ACME.appId), before);
  });

  test('sign-in: session cookie attributes, next only to console pages, sign-out ends the session', async (t) => {
    const s = await startControlPlane(t, config(), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    const res = await c.post('/console/sign-in', { secretId: ACME.secretId, secretKey: ACME.secretKey, next: '/console/quota' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/console/quota');
    const cookie = res.headers.get('set-cookie') ?? '';
    assert.match(cookie, /^edgepurge_session=[A-Za-z0-9_-]{43}; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=\d+$/, 'no Secure over plain HTTP');
    for (const next of ['https://evil.example/', '//evil.example/console/', '/console/../admin', '/v2/index.php']) {
      const r = await new ConsoleClient(s).post('/console/sign-in', { secretId: ACME.secretId, secretKey: ACME.secretKey, next });
      assert.equal(r.headers.get('location'), '/console/history', next);
    }
    await c.signIn(ACME);
    assert.equal((await c.get('/console/history')).status, 200);
    const out = await c.post('/console/sign-out', { csrf: c.csrf });
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie') ?? '', /^edgepurge_session=; .*Max-Age=0/);
    assert.equal((await c.get('/console/history')).status, 303, 'the old cookie no longer works');
  });

  test('a wrong key is refused with one message for unknown and known SecretIds; repeated failures are braked', async (t) => {
    const s = await startControlPlane(t, config(), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    const unknown = await c.signIn({ secretId: 'AKIDnobody000000', secretKey: ACME.secretKey });
    const wrong = await c.signIn({ secretId: ACME.secretId, secretKey: `${ACME.secretKey}x` });
    assert.equal(unknown.status, 401);
    assert.equal(wrong.status, 401);
    assert.match(await wrong.text(), /Unknown SecretId or wrong SecretKey/);
    assert.equal(c.cookie, '');
    await c.signIn({ secretId: ACME.secretId, secretKey: '' });
    const braked = await c.signIn(ACME);
    assert.equal(braked.status, 429, 'after 3 failures from this address even the right key waits');
    assert.match(braked.headers.get('retry-after') ?? '', /^\d+$/);
    assert.match(await braked.text(), /Too many failed sign-ins/);
  });

  test('sign-in from another origin or without Origin is refused (login CSRF)', async (t) => {
    const s = await startControlPlane(t, config(), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    assert.equal((await c.post('/console/sign-in', { secretId: ACME.secretId, secretKey: ACME.secretKey }, { origin: 'http://evil.example' })).status, 403);
    const noOrigin = await fetch(`${s.url}/console/sign-in`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `secretId=${ACME.secretId}&secretKey=${ACME.secretKey}` });
    assert.equal(noOrigin.status, 403);
  });

  test('a rotated key (SIGHUP) ends the sessions signed in with the old one', async (t) => {
    const s = await startControlPlane(t, config(), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    await c.signIn(ACME);
    assert.equal((await c.get('/console/history')).status, 200);
    const rotated = config((a) => (a.appId === ACME.appId ? { credentials: [{ secretId: ACME.secretId, secretKey: 'a-brand-new-secret-key-000001' }] } : {}));
    s.controlPlane.reload(parseConfig({ ...rotated, store: { driver: 'sqlite', path: `${s.dir}/edgepurge.db` } }));
    assert.equal((await c.get('/console/history')).status, 303);
  });
});

describe('console: CSRF on every POST', () => {
  test('a purge without the right token or from another origin is refused and writes nothing', async (t) => {
    const s = await startControlPlane(t, config(), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    const other = new ConsoleClient(s);
    await c.signIn(ACME);
    await other.signIn(ACME);
    const form = { type: 'purge_host', zone: ACME.zoneId, targets: ACME.host };
    const before = await jobCount(s, ACME.appId);
    for (const [why, res] of [
      ['no token', () => c.post('/console/purge', form)],
      ['empty token', () => c.submit({ ...form, csrf: '' })],
      // The last character changed to another one (a token ending in "A" must not stay right 1 time in 64).
      ['wrong token', () => c.submit({ ...form, csrf: `${c.csrf.slice(0, -1)}${c.csrf.endsWith('A') ? 'B' : 'A'}` })],
      ["another session's token", () => c.submit({ ...form, csrf: other.csrf })],
      ['foreign Origin', () => c.submit(form, { origin: 'http://evil.example' })],
      ['Origin "null"', () => c.submit(form, { origin: 'null' })],
      ['a JSON body', () => c.submit(form, { 'content-type': 'application/json' })],
    ] as const) {
      const r = await res();
      assert.ok(r.status === 403 || r.status === 415, `${why}: ${r.status}`);
    }
    assert.equal(await jobCount(s, ACME.appId), before, 'nothing was written');
    const ok = await c.submit(form);
    assert.equal(ok.status, 303);
    assert.match(ok.headers.get('location') ?? '', /^\/console\/jobs\/[0-9a-z]+$/);
    assert.equal(await jobCount(s, ACME.appId), before + 1);
    const signOut = await c.post('/console/sign-out', { csrf: other.csrf });
    assert.equal(signOut.status, 403, 'sign-out takes the token too');
  });
});

describe('console: the API code path', () => {
  const limited: ConfigInput = config(() => ({ quotas: { purge_prefix: { batch: 2, daily: 3 } } }));

  test('every refusal shows the code and message the API gives for the same input', async (t) => {
    const s = await startControlPlane(t, limited, FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    await c.signIn(ACME);
    const cases: Array<[string, Record<string, string>, Record<string, unknown>, string]> = [
      ['empty targets', { type: 'purge_url', zone: ACME.zoneId, targets: '' }, { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [] }, 'CreatePurgeTask'],
      ['foreign host only', { type: 'purge_url', zone: ACME.zoneId, targets: `http://${GLOBEX.host}/a` }, { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${GLOBEX.host}/a`] }, 'CreatePurgeTask'],
      ['not a URL', { type: 'purge_url', zone: ACME.zoneId, targets: 'not a url' }, { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: ['not a url'] }, 'CreatePurgeTask'],
      ['purge_all on every zone', { type: 'purge_all', zone: '*', targets: '' }, { ZoneId: '*', Type: 'purge_all', Targets: [] }, 'CreatePurgeTask'],
      ['unknown zone', { type: 'purge_host', zone: 'zone-nope', targets: ACME.host }, { ZoneId: 'zone-nope', Type: 'purge_host', Targets: [ACME.host] }, 'CreatePurgeTask'],
      ['unknown type', { type: 'purge_everything', zone: ACME.zoneId, targets: ACME.host }, { ZoneId: ACME.zoneId, Type: 'purge_everything', Targets: [ACME.host] }, 'CreatePurgeTask'],
      ['bad method', { type: 'purge_host', zone: ACME.zoneId, method: 'obliterate', targets: ACME.host }, { ZoneId: ACME.zoneId, Type: 'purge_host', Method: 'obliterate', Targets: [ACME.host] }, 'CreatePurgeTask'],
      ['batch over the limit', { type: 'purge_prefix', zone: ACME.zoneId, targets: ['a', 'b', 'c'].map((p) => `http://${ACME.host}/${p}/`).join('\n') }, { ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: ['a', 'b', 'c'].map((p) => `http://${ACME.host}/${p}/`) }, 'CreatePurgeTask'],
      ['tags on every zone without domains', { type: 'purge_cache_tag', zone: '*', targets: 'tag1' }, { ZoneId: '*', Type: 'purge_cache_tag', Targets: ['tag1'] }, 'CreatePurgeTask'],
      ['prefetch with a bad header', { type: 'prefetch_url', zone: ACME.zoneId, targets: `http://${ACME.host}/a`, headers: 'Host: x' }, { ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/a`], Headers: [{ Name: 'Host', Value: 'x' }] }, 'CreatePrefetchTask'],
    ];
    const before = await jobCount(s, ACME.appId);
    for (const [why, form, params, action] of cases) {
      const res = await c.submit(form);
      assert.equal(res.status, 400, why);
      const page = await res.text();
      const api = await rawCall(s, ACME, { action, version: TEO, body: params });
      assert.ok(api.response.Error, `${why}: the API accepted it`);
      assert.deepEqual(pageError(page), { code: api.response.Error.Code, message: api.response.Error.Message }, why);
      const typed = (form.targets ?? '').split('\n')[0]!;
      assert.ok(page.includes(`${typed}</textarea>`) || page.includes(`${typed}\n`), `${why}: the form keeps what was typed`);
    }
    assert.equal(await jobCount(s, ACME.appId), before, 'no refusal wrote anything');
  });

  test('the daily quota is the one the API charges: the console and the API draw on the same counter', async (t) => {
    const s = await startControlPlane(t, limited, FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    await c.signIn(ACME);
    const dir = (p: string) => `http://${ACME.host}/${p}/`;
    assert.equal((await c.submit({ type: 'purge_prefix', zone: ACME.zoneId, targets: `${dir('a')}\n${dir('b')}` })).status, 303);
    assertOk(await rawCall(s, ACME, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: [dir('c')] } }));
    const quota = await (await c.get('/console/quota')).text();
    assert.match(quota, /<th scope="row">purge_prefix<\/th>\s*<td><meter[^>]*value="3"/);
    const refused = await c.submit({ type: 'purge_prefix', zone: ACME.zoneId, targets: dir('d') });
    const api = await rawCall(s, ACME, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: [dir('d')] } });
    assert.deepEqual(pageError(await refused.text()), { code: 'LimitExceeded.DailyQuota', message: api.response.Error!.Message });
  });

  test('history filters are DescribePurgeTasks filters, with its messages', async (t) => {
    const s = await startControlPlane(t, config(), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    await c.signIn(ACME);
    await c.submit({ type: 'purge_url', zone: ACME.zoneId, targets: `http://${ACME.host}/one.js\nhttp://${ACME.host2}/two.css` });
    await c.submit({ type: 'purge_host', zone: ACME.zoneId, targets: ACME.host2 });
    const rows = async (q: string) => [...(await (await c.get(`/console/history?${q}`)).text()).matchAll(/<td class="target"><code>([^<]*)<\/code>/g)].map((m) => m[1]);
    assert.deepEqual(await rows(''), [ACME.host2, `http://${ACME.host2}/two.css`, `http://${ACME.host}/one.js`]);
    assert.deepEqual(await rows('type=purge_host'), [ACME.host2]);
    assert.deepEqual(await rows(`domain=${ACME.host}`), [`http://${ACME.host}/one.js`]);
    assert.deepEqual(await rows('target=ONE&fuzzy=on'), [`http://${ACME.host}/one.js`]);
    assert.deepEqual(await rows('target=one'), [], 'exact match without fuzzy');
    assert.deepEqual(await rows('status=failed'), []);
    const page = await (await c.get('/console/history?type=prefetch_url&target=x&fuzzy=on')).text();
    assert.deepEqual(pageError(page), { code: 'InvalidParameter.ParameterError', message: 'Filter target does not support fuzzy matching for prefetch tasks' });
  });
});

describe('console: tenant walls (DESIGN invariant 7)', () => {
  test("another account sees neither the job, its stream, its history rows nor the nodes that serve only the first", async (t) => {
    const withNodes = config(() => ({}), {
      nodes: [
        { id: 'acme-only', listen: '127.0.0.1:1', token: 'token-acme-only-0123456789', hosts: [ACME.host] },
        { id: 'globex-only', listen: '127.0.0.1:2', token: 'token-globex-only-012345678', hosts: [GLOBEX.host] },
      ],
    });
    const s = await startControlPlane(t, withNodes, FAST_SIGN_IN);
    const acme = new ConsoleClient(s);
    const globex = new ConsoleClient(s);
    await acme.signIn(ACME);
    await globex.signIn(GLOBEX);
    const job = await acmeJob(s);
    assert.equal((await acme.get(`/console/jobs/${job}`)).status, 200);
    const seen = await globex.get(`/console/jobs/${job}`);
    assert.equal(seen.status, 404);
    assert.doesNotMatch(await seen.text(), /secret-acme-path/);
    assert.equal((await globex.get(`/console/jobs/${job}/events`)).status, 404);
    assert.doesNotMatch(await (await globex.get('/console/history?range=7d')).text(), /secret-acme-path/);
    const fleet = await (await globex.get('/console/fleet')).text();
    assert.match(fleet, /globex-only/);
    assert.doesNotMatch(fleet, /acme-only/);
  });
});

describe('console: live job stream', () => {
  test('a settled job streams its fragment once, then `settled`, and ends', async (t) => {
    const s = await startControlPlane(t, config(), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    await c.signIn(ACME);
    const job = await acmeJob(s);
    const res = await c.get(`/console/jobs/${job}/events`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const body = await res.text();
    const events = [...body.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    assert.deepEqual(events, ['job', 'settled']);
    const fragment = JSON.parse(/^event: job\ndata: (.*)$/m.exec(body)![1]!) as string;
    assert.match(fragment, /secret-acme-path/);
    assert.match(fragment, /Settled/);
  });
});

describe('console: fleet and escaping', () => {
  test('fleet page: a node that never connected, and a refused ack as its last error', async (t) => {
    const token = 'token-edge-fleet-0123456789';
    const s = await startControlPlane(t, config(() => ({}), { nodes: [{ id: 'edge-f', listen: '127.0.0.1:1', token }] }), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    await c.signIn(ACME);
    const row = async () => /<tr>\s*<th scope="row"><span class="mono">edge-f<\/span>[\s\S]*?<\/tr>/.exec(await (await c.get('/console/fleet')).text())?.[0] ?? '';
    const first = await row();
    assert.match(first, /disconnected/);
    assert.match(first, /never acked/);
    assert.match(first, /<span class="muted">none<\/span>/, 'no error yet');
    const ack = await fetch(`${s.url}/edge/v1/ack`, { method: 'POST', headers: { 'x-edge-node': 'edge-f', authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"seq":"x"}' });
    assert.equal(ack.status, 400);
    assert.match(await row(), /ack refused \(HTTP 400\)/);
  });

  test('fleet stream: the fragment is sent again when the fleet changes (log end, a node\'s last error), the browser never polls', async (t) => {
    const token = 'token-edge-fleet-0123456789';
    const s = await startControlPlane(t, config(() => ({}), { nodes: [{ id: 'edge-f', listen: '127.0.0.1:1', token }] }), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    await c.signIn(ACME);
    const page = await (await c.get('/console/fleet')).text();
    assert.match(page, /data-live="\/console\/fleet\/events" data-live-event="fleet"/);
    const res = await c.get('/console/fleet/events');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.getReader();
    t.after(() => reader.cancel());
    let buffered = '';
    const decoder = new TextDecoder();
    /** The next `fleet` event's fragment that matches `re` (earlier ones are skipped). */
    const next = async (re: RegExp): Promise<string> => {
      for (;;) {
        const m = /^event: fleet\ndata: (.*)\n\n/m.exec(buffered);
        if (m) {
          buffered = buffered.slice(m.index + m[0].length);
          const fragment = JSON.parse(m[1]!) as string;
          if (re.test(fragment)) return fragment;
          continue;
        }
        const { value, done } = await reader.read();
        assert.equal(done, false, 'the stream stays open');
        buffered += decoder.decode(value, { stream: true });
      }
    };
    assert.match(await next(/never acked/), /The purge log is at sequence 0\./);
    await acmeJob(s);
    await next(/The purge log is at sequence 1\./);
    const ack = await fetch(`${s.url}/edge/v1/ack`, { method: 'POST', headers: { 'x-edge-node': 'edge-f', authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"seq":"x"}' });
    assert.equal(ack.status, 400);
    await next(/ack refused \(HTTP 400\)/);
  });

  test('markup in a target is shown as text on every page', async (t) => {
    const s = await startControlPlane(t, config(), FAST_SIGN_IN);
    const c = new ConsoleClient(s);
    await c.signIn(ACME);
    const evil = '<script>alert(1)</script>';
    const tag = await c.submit({ type: 'purge_cache_tag', zone: ACME.zoneId, targets: evil });
    const pages = [tag.status === 303 ? await (await c.get(tag.headers.get('location')!)).text() : await tag.text()];
    const refused = await c.submit({ type: 'purge_host', zone: ACME.zoneId, targets: `${evil}.example` });
    pages.push(await refused.text());
    pages.push(await (await c.get(`/console/history?target=${encodeURIComponent(evil)}`)).text());
    pages.push(await (await c.get(`/console/jobs/${encodeURIComponent(evil)}`)).text());
    for (const page of pages) {
      assert.doesNotMatch(page, /<script>alert/);
    }
    assert.ok(pages.some((p) => p.includes('&lt;script&gt;alert(1)&lt;/script&gt;')), 'the text itself is shown');
  });
});
