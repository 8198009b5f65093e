// Property-based fuzzing of the edge fan-out endpoints (src/fanout): /edge/v1/ack bodies, /edge/v1/stream
// query strings, node authentication headers and stray paths. Never a 5xx, always an answer within a
// bound, and a refused request (4xx) saves nothing: node progress, leases and task statuses stay as
// they were (DESIGN invariant 8). A result may only settle a prefetch the reporting node serves.
import { FAIL_TYPES, MAX_ACK_RESULTS, MAX_FAIL_MESSAGE } from '../../src/fanout/wire.ts';
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/shared/clock.ts';
import { ACME, baseConfig, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { fuzz, hostileJson, jsonObjectText, nastyNumber, nastyString, send } from './fuzz.ts';
import { storeSnapshot } from './store-snapshot.ts';
import { FUZZ_NOW } from './values.ts';

interface Node {
  readonly id: string;
  readonly listen: string;
  readonly token: string;
  readonly hosts?: string[];
}
const NODES: readonly [Node, Node] = [
  { id: 'edge-a', listen: '127.0.0.1:1', token: 'token-edge-a-0123456789' },
  { id: 'edge-b', listen: '127.0.0.1:2', token: 'token-edge-b-0123456789', hosts: [ACME.host2] },
];

const auth = (n: Node) => ({ 'x-edge-node': n.id, authorization: `Bearer ${n.token}` });

/** The wire contract of src/fanout/wire.ts, read strictly: what a well-formed AckRequest is. */
function wellFormedAck(text: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return false;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const { seq, results } = v as { seq?: unknown; results?: unknown };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return false;
  if (results === undefined) return true;
  if (!Array.isArray(results) || results.length > MAX_ACK_RESULTS) return false;
  return results.every((r: unknown) => {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return false;
    const { taskId, ok, failType, failMessage } = r as Record<string, unknown>;
    return (
      // Task ids are row ids (1, 2, …); FailTypes are the API's; messages are bounded (wire.ts).
      typeof taskId === 'number' && Number.isSafeInteger(taskId) && taskId > 0 && typeof ok === 'boolean' &&
      (failType === undefined || (FAIL_TYPES as readonly unknown[]).includes(failType)) &&
      (failMessage === undefined || (typeof failMessage === 'string' && failMessage.length <= MAX_FAIL_MESSAGE))
    );
  });
}

/** `after` as wire.ts documents it: absent, or one decimal integer >= -1 within 2^53. */
function wellFormedAfter(query: string): boolean {
  const values = new URLSearchParams(query).getAll('after');
  if (values.length === 0) return true;
  return values.length === 1 && /^(-1|0|[1-9]\d{0,15})$/.test(values[0]!) && Number.isSafeInteger(Number(values[0]));
}

/** A control plane with the two nodes, long leases and deadlines (the clock only moves when a test moves it). */
const startHub = (clock: ManualClock): Promise<TestServer> =>
  startControlPlane(undefined, { ...baseConfig(), nodes: [...NODES], fanout: { leaseMs: 60_000, taskTimeoutMs: 3_600_000 } }, { clock, heartbeatMs: 50 });

let targetCounter = 0;

/** Submits a one-target job straight to the purge service; returns its task id. */
async function submit(s: TestServer, who: { appId: number; secretId: string }, type: 'prefetch_url' | 'purge_url', host: string): Promise<number> {
  const account = s.controlPlane.directory.config.accounts.find((a) => a.appId === who.appId)!;
  const r = await s.controlPlane.purge.submit({
    account, source: 'teo', secretId: who.secretId, clientIp: '127.0.0.1', type, method: type === 'purge_url' ? 'delete' : 'invalidate',
    zoneId: null, targets: [`http://${host}/fuzz-${++targetCounter}`], encodeUrl: false,
  });
  return r.tasks[0]!.id;
}

/** A task's status, whoever owns it. */
async function statusOf(s: TestServer, taskId: number): Promise<string | undefined> {
  for (const { appId } of s.controlPlane.directory.config.accounts) {
    const t = (await s.store.listTasks({ appId, offset: 0, limit: 1_000_000 })).tasks.find((x) => x.id === taskId);
    if (t) return t.status;
  }
  return undefined;
}

/** Posts one ack as `node` and waits for the settle pass it schedules. */
async function postAck(s: TestServer, node: Node, body: unknown): Promise<number> {
  const a = await send({ port: s.port, method: 'POST', path: '/edge/v1/ack', headers: { ...auth(node), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await new Promise((r) => setTimeout(r, 120));
  return a.status;
}

describe('edge fan-out endpoints under fuzzing', () => {
  const clock = new ManualClock(FUZZ_NOW);
  let s: TestServer;

  before(async () => {
    s = await startHub(clock);
    // A prefetch and a purge per host (edge-b serves only host2): tasks the fuzzed results can name.
    for (const host of [ACME.host, ACME.host2]) {
      await submit(s, ACME, 'prefetch_url', host);
      await submit(s, ACME, 'purge_url', host);
    }
  });
  after(() => s?.close());

  /** A well-formed AckRequest (wire.ts) naming tasks that exist and tasks that do not. */
  const goodAck = fc.record(
    {
      seq: fc.integer({ min: 0, max: 12 }),
      results: fc.array(
        fc.record(
          { taskId: fc.integer({ min: 0, max: 8 }), ok: fc.boolean(), failType: fc.constantFrom('originPullFailed', 'taskFailed', ''), failMessage: fc.string({ maxLength: 12 }) },
          { requiredKeys: ['taskId', 'ok'] },
        ),
        { maxLength: 3 },
      ),
    },
    { requiredKeys: ['seq'] },
  );
  const hostile = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(null, undefined, 0, -1, 1.5, 2 ** 53, '1', '', true, [], {}, [null]) }, { weight: 2, arbitrary: hostileJson }, { weight: 1, arbitrary: nastyNumber });
  /** One thing wrong with a well-formed ack: a field replaced or dropped, a result replaced, a stray key. */
  const mutation = fc.oneof(
    fc.record({ at: fc.constantFrom('seq', 'results'), value: hostile }),
    fc.record({ at: fc.constant('item'), index: fc.nat(3), value: hostile }),
    fc.record({ at: fc.constant('field'), index: fc.nat(3), field: fc.constantFrom('taskId', 'ok', 'failType', 'failMessage'), value: hostile }),
    fc.record({ at: fc.constant('stray'), key: fc.constantFrom('__proto__', 'constructor', 'extra', '', 'SEQ'), value: hostile }),
    fc.constant({ at: 'none' as const }),
  );
  const mutatedAck = fc.tuple(goodAck, mutation).map(([ack, m]) => {
    const entries: [string, unknown][] = Object.entries(ack);
    const results = (ack.results ?? []).map((r) => ({ ...r })) as Record<string, unknown>[];
    const set = (k: string, v: unknown) => {
      const i = entries.findIndex(([key]) => key === k);
      if (i === -1) entries.push([k, v]);
      else entries[i] = [k, v];
    };
    if (m.at === 'seq' || m.at === 'results') set(m.at, m.value);
    else if (m.at === 'item') set('results', Object.assign([...results], { [Math.min(m.index, results.length)]: m.value }));
    else if (m.at === 'field' && results.length > 0) {
      const r = results[m.index % results.length]!;
      if (m.value === undefined) delete r[m.field];
      else r[m.field] = m.value;
      set('results', results);
    } else if (m.at === 'stray') entries.push([m.key, m.value]);
    // `undefined` drops the key (JSON has no undefined).
    return jsonObjectText(entries.filter(([, v]) => v !== undefined));
  });

  /** Ack bodies: well-formed, near-well-formed (one thing wrong), and plain garbage. */
  const ackBody: fc.Arbitrary<string> = fc.oneof(
    { weight: 5, arbitrary: mutatedAck },
    { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', 'null', '[]', '1', '"x"', '{', '{"seq":1e999}', '{"seq":"1"}', '{"seq":1,"results":{}}', `{"seq":${'['.repeat(5000)}`, '\ufeff{"seq":1}')) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null') },
  );

  /** Answers with a JSON body; never a 5xx. */
  function assertAnswered(status: number, body: string): void {
    assert.ok(status >= 200 && status < 500, `HTTP ${status}: ${body.slice(0, 200)}`);
  }

  /**
   * The store once the hub's settle passes are done with earlier requests (two equal snapshots 10 ms
   * apart): a status change a previous run caused must not be blamed on this one.
   */
  async function quiet() {
    let last = await storeSnapshot(s, clock.now());
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const now = await storeSnapshot(s, clock.now());
      if (JSON.stringify(now) === JSON.stringify(last)) return now;
      last = now;
    }
    throw new Error('the store never settled');
  }

  /** Sends an ack as `node`; returns the status, the body and whether the store changed (a settle pass included). */
  async function ack(body: string, node: 0 | 1): Promise<{ status: number; text: string; changed: boolean }> {
    clock.advance(1); // a saved ack would carry a new seenAt
    const before = await quiet();
    const a = await send({ port: s.port, method: 'POST', path: '/edge/v1/ack', headers: { ...auth(NODES[node]), 'content-type': 'application/json' }, body });
    // Results kept in memory surface at the next settle pass: run one before comparing.
    if (body.includes('results')) {
      s.controlPlane.hub.settle();
      await new Promise((r) => setTimeout(r, 15));
    }
    const changed = JSON.stringify(await storeSnapshot(s, clock.now())) !== JSON.stringify(before);
    return { status: a.status, text: a.body.toString('utf8'), changed };
  }
  const anyNode = fc.constantFrom<0 | 1>(0, 1);

  test('acks: any body is answered without a 5xx', async () => {
    await fuzz(
      'edge ack never 5xx',
      fc.asyncProperty(ackBody, anyNode, async (body, node) => {
        const a = await ack(body, node);
        assertAnswered(a.status, a.text);
      }),
      50,
    );
  });

  test('acks: a refused ack (any status but 200) saves nothing — no progress, no lease, no task status', async () => {
    await fuzz(
      'edge ack refusal saves nothing',
      fc.asyncProperty(ackBody, anyNode, async (body, node) => {
        const a = await ack(body, node);
        if (a.status !== 200) assert.ok(!a.changed, `HTTP ${a.status} (${a.text.slice(0, 100)}) but the store changed for ${body.slice(0, 200)}`);
      }),
      50,
    );
  });

  test('acks: a well-formed ack (wire.ts AckRequest) gets 200 and {lastSeq, leaseMs}; a malformed one is refused', async () => {
    await fuzz(
      'edge ack validation',
      fc.asyncProperty(ackBody, anyNode, async (body, node) => {
        const a = await ack(body, node);
        if (wellFormedAck(body)) {
          assert.equal(a.status, 200, `well-formed ack refused: ${a.text}`);
          const reply = JSON.parse(a.text) as { lastSeq: unknown; leaseMs: unknown };
          assert.equal(typeof reply.lastSeq, 'number');
          assert.equal(typeof reply.leaseMs, 'number');
        } else {
          assert.ok(a.status >= 400 && a.status < 500, `malformed ack answered HTTP ${a.status}: ${body.slice(0, 200)}`);
        }
      }),
      50,
    );
  });

  /** Opens a stream and returns its status and first line, then hangs up (streams never end by themselves). */
  function openStream(query: string, headers: Record<string, string>): Promise<{ status: number; first: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: s.port, method: 'GET', path: `/edge/v1/stream${query}`, headers, agent: false });
      const timer = setTimeout(() => req.destroy(new Error('no first line within 3 s')), 3000);
      req.on('response', (res) => {
        let buf = '';
        res.setEncoding('utf8');
        const done = () => {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode ?? 0, first: buf.split('\n', 1)[0]! });
        };
        res.on('data', (d: string) => {
          buf += d;
          if (buf.includes('\n')) done();
        });
        res.on('end', done);
      });
      req.on('error', reject);
      req.end();
    });
  }

  const afterValue = fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: -3, max: 20 }).map(String) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '', '+1', ' 1', '1 ', '01', '-0', '1e3', '0x10', '0b1', '1.0', '1.5', 'Infinity', 'NaN', '-1.0', '9007199254740991', '9007199254740992', '99999999999999999999', '%31', '1%00', '١',
      ),
    },
    { weight: 1, arbitrary: nastyString },
  );
  const streamQuery = fc.oneof(
    { weight: 4, arbitrary: afterValue.map((v) => `?after=${encodeURIComponent(v.toWellFormed())}`) },
    { weight: 1, arbitrary: fc.tuple(afterValue, afterValue).map(([a, b]) => `?after=${encodeURIComponent(a.toWellFormed())}&after=${encodeURIComponent(b.toWellFormed())}`) },
    { weight: 1, arbitrary: fc.constantFrom('', '?', '?after', '?after=1&x=2', '?AFTER=1', '?after=1#x', '?after=%zz', '?%=1') },
  );

  test('streams: any query is answered (a first line or a 4xx) without a 5xx, and opening one saves nothing', async () => {
    await fuzz(
      'edge stream never 5xx',
      fc.asyncProperty(streamQuery, anyNode, async (query, node) => {
        const before = await quiet();
        const r = await openStream(query, auth(NODES[node]));
        assertAnswered(r.status, r.first);
        assert.deepEqual(await storeSnapshot(s, clock.now()), before, 'opening a stream changed the store');
      }),
      40,
    );
  });

  test('streams: `after` is accepted (200 + hello) only as one integer >= -1, refused with 400 otherwise', async () => {
    await fuzz(
      'edge stream after validation',
      fc.asyncProperty(streamQuery, anyNode, async (query, node) => {
        const r = await openStream(query, auth(NODES[node]));
        if (wellFormedAfter(query.replace(/^\?/, '').replace(/#.*$/, ''))) {
          assert.equal(r.status, 200, `a valid stream request was refused: ${query} → ${r.first}`);
          assert.equal((JSON.parse(r.first) as { t: string }).t, 'hello');
        } else {
          assert.equal(r.status, 400, `malformed after accepted: ${query} → HTTP ${r.status} ${r.first}`);
        }
      }),
      40,
    );
  });

  const authHeaders = fc.record(
    {
      'x-edge-node': fc.oneof(fc.constantFrom('edge-a', 'edge-b', 'EDGE-A', 'edge-a ', 'edge-c', '', '__proto__', 'constructor', 'toString'), nastyString.filter((v) => /^[\t\x20-\x7e]*$/.test(v))),
      authorization: fc.oneof(
        fc.constantFrom(`Bearer ${NODES[0].token}`, `Bearer ${NODES[1].token}`, `bearer ${NODES[0].token}`, `Bearer  ${NODES[0].token}`, `Bearer ${NODES[0].token} `, 'Bearer ', 'Bearer', `Basic ${NODES[0].token}`, NODES[0].token, `Bearer ${NODES[0].token.slice(0, -1)}`, `Bearer ${NODES[0].token}x`),
        nastyString.filter((v) => /^[\t\x20-\x7e]*$/.test(v)),
      ),
    },
    { requiredKeys: [] },
  );

  test('node authentication: any X-Edge-Node / Authorization pair other than a node and its own token is 401 and saves nothing', async () => {
    await fuzz(
      'edge auth',
      fc.asyncProperty(authHeaders, fc.constantFrom('ack', 'stream'), async (headers, what) => {
        clock.advance(1);
        const before = await quiet();
        const genuine = NODES.some((n) => headers['x-edge-node'] === n.id && headers.authorization === `Bearer ${n.token}`);
        const status = what === 'ack'
          ? (await send({ port: s.port, method: 'POST', path: '/edge/v1/ack', headers: { ...headers, 'content-type': 'application/json' }, body: '{"seq":0}' })).status
          : (await openStream('?after=-1', headers as Record<string, string>)).status;
        assert.equal(status, genuine ? 200 : 401, JSON.stringify(headers));
        if (!genuine) assert.deepEqual(await storeSnapshot(s, clock.now()), before, 'an unauthenticated request changed the store');
      }),
      60,
    );
  });

  test('any method and path under /edge/ is answered (4xx when not an endpoint), never a 5xx or a hang', async () => {
    await fuzz(
      'edge paths',
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
        fc.oneof(fc.constantFrom('/edge/', '/edge/v1/', '/edge/v1/ack/', '/edge/v1/stream/', '/edge/v2/stream', '/edge/v1/jobs/', '/edge/v1/jobs/x', '/edge/v1/ACK', '/edge/v1/%2e%2e/ack', '/edge/v1/./ack', '/edge//v1/ack', '/edge/v1/ack?x=1'), fc.webPath().map((p) => `/edge/v1${p}`)),
        fc.boolean(),
        async (method, path, authenticated) => {
          clock.advance(1);
          const before = await quiet();
          const isStream = method === 'GET' && new URL(path, 'http://x').pathname === '/edge/v1/stream';
          if (isStream) return; // a real stream: covered above
          const a = await send({ port: s.port, method, path, headers: authenticated ? auth(NODES[0]) : {}, ...(method === 'GET' || method === 'HEAD' ? {} : { body: '{"seq":0}' }) });
          assertAnswered(a.status, a.body.toString());
          const isAck = method === 'POST' && new URL(path, 'http://x').pathname === '/edge/v1/ack' && authenticated;
          if (!isAck) assert.deepEqual(await storeSnapshot(s, clock.now()), before, `${method} ${path} changed the store`);
        },
      ),
      50,
    );
  });
});

// On a control plane of their own: the fuzzed acks above name arbitrary task ids, and (see the second
// property) results for ids that do not exist yet may be kept and applied to the task that gets the id.
describe('edge fan-out: whose results count', () => {
  const clock = new ManualClock(FUZZ_NOW);
  let s: TestServer;
  before(async () => {
    s = await startHub(clock);
    // Both nodes hold a lease: a fenced node would count as done and hide what the results did.
    for (const n of NODES) assert.equal(await postAck(s, n, { seq: 0 }), 200);
  });
  after(() => s?.close());

  test('a node result settles only a prefetch task that node is responsible for', async () => {
    await fuzz(
      'edge ack result scope',
      fc.asyncProperty(fc.constantFrom('prefetch-other-host', 'purge', 'other-tenant'), fc.boolean(), async (kind, ok) => {
        // edge-b serves only host2: it has no say over host1's prefetch, a purge, or another tenant's task.
        const taskId =
          kind === 'other-tenant' ? await submit(s, GLOBEX, 'prefetch_url', GLOBEX.host) : await submit(s, ACME, kind === 'purge' ? 'purge_url' : 'prefetch_url', kind === 'purge' ? ACME.host2 : ACME.host);
        const before = await statusOf(s, taskId);
        assert.ok((await postAck(s, NODES[1], { seq: 0, results: [{ taskId, ok, failType: 'originPullFailed', failMessage: 'fuzz' }] })) < 500);
        const now = await statusOf(s, taskId);
        assert.equal(now, before, `edge-b's ${ok ? 'success' : 'failure'} turned a ${kind} task ${taskId} from ${before} to ${now}`);
      }),
      12,
    );
  });

  test('a result naming a task that does not exist is dropped: it cannot settle the task later created with that id', async () => {
    await fuzz(
      'edge ack unknown task',
      fc.asyncProperty(fc.integer({ min: 1, max: 3 }), fc.boolean(), async (ahead, ok) => {
        const last = await submit(s, ACME, 'prefetch_url', ACME.host);
        // edge-a serves host1: once the task exists, a result from it would count.
        assert.ok((await postAck(s, NODES[0], { seq: 0, results: [{ taskId: last + ahead, ok, failType: 'originPullFailed', failMessage: 'fuzz' }] })) < 500);
        let id = last;
        while (id < last + ahead) id = await submit(s, ACME, 'prefetch_url', ACME.host);
        // Settling runs on every heartbeat (50 ms): give it a few.
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(await statusOf(s, id), 'processing', `a result sent before task ${id} existed settled it`);
      }),
      6,
    );
  });
});
