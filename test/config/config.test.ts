// edgepurge.yaml: YAML (JSON is valid YAML), strict keys, every problem listed in one ConfigError,
// defaults filled in, the result frozen (STYLE 10).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load.ts';

const account = (over: Record<string, unknown> = {}) => ({
  appId: 1250000001,
  name: 'acme',
  credentials: [{ secretId: 'AKIDacme0001', secretKey: 'acme-secret-key-0001' }],
  zones: [{ zoneId: 'zone-acme1', name: 'acme.com', domains: [{ host: 'www.acme.com', origin: 'http://127.0.0.1:9000' }] }],
  ...over,
});

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The problems of a refused config. */
function problems(input: unknown): readonly string[] {
  try {
    parseConfig(input);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    // One message lists them all, one per line.
    for (const p of e.problems) assert.ok(e.message.includes(p), p);
    return e.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('loading', () => {
  test('a minimal YAML file gets the documented defaults and is frozen', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'edgepurge.yaml');
    writeFileSync(
      path,
      `accounts:
  - appId: 1250000001
    name: acme
    credentials: [{ secretId: AKIDacme0001, secretKey: acme-secret-key-0001 }]
    zones:
      - zoneId: zone-acme1
        name: Acme.com
        domains: [{ host: WWW.acme.com, origin: "http://127.0.0.1:9000" }]
`,
    );
    const c = loadConfigFile(path);
    assert.deepEqual(c.server, { listen: '127.0.0.1:8080', timezone: '+08:00', maxBodyBytes: 1024 * 1024, retentionDays: 30, connections: { perAddress: 1024, total: 16_384, firstByteTimeoutMs: 10_000 }, accessLog: true });
    assert.deepEqual(c.metrics, { enabled: true });
    assert.deepEqual(c.store, { driver: 'sqlite', path: './data/edgepurge.db' });
    assert.deepEqual(c.fanout, { leaseMs: 10_000, taskTimeoutMs: 300_000 });
    const a = c.accounts[0]!;
    assert.deepEqual(a.rateLimit, { perSecond: 20, burst: 40 });
    assert.deepEqual(a.quotas, {});
    assert.equal(a.projectId, 0);
    assert.equal(a.zones[0]!.name, 'acme.com');
    assert.equal(a.zones[0]!.domains[0]!.host, 'www.acme.com');
    assert.deepEqual(c.nodes, []);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(a) && Object.isFrozen(a.zones[0]!.domains));
    assert.throws(() => {
      (c.server as { listen: string }).listen = 'x';
    }, TypeError);
  });

  test('a JSON file is accepted (compact, indented with spaces or tabs) and means the same as YAML', (t) => {
    const dir = tempDir(t);
    const input = { server: { listen: '127.0.0.1:0', timezone: '-05:00' }, accounts: [account({ rateLimit: false, quotas: { purge_url: { batch: 3, daily: 5 } } })] };
    const expected = parseConfig(input);
    for (const [name, text] of [
      ['compact.json', JSON.stringify(input)],
      ['spaces.json', JSON.stringify(input, null, 2)],
      ['tabs.json', JSON.stringify(input, null, '\t')],
    ] as const) {
      writeFileSync(join(dir, name), text);
      assert.deepEqual(loadConfigFile(join(dir, name)), expected, name);
    }
  });

  test('an unreadable file and broken YAML are ConfigErrors that name the file', (t) => {
    const dir = tempDir(t);
    assert.throws(() => loadConfigFile(join(dir, 'missing.yaml')), (e: unknown) => e instanceof ConfigError && /missing\.yaml/.test(e.message) && /cannot read/.test(e.message));
    writeFileSync(join(dir, 'broken.yaml'), 'accounts: [ { appId: 1\nserver: {');
    assert.throws(() => loadConfigFile(join(dir, 'broken.yaml')), (e: unknown) => e instanceof ConfigError && /broken\.yaml/.test(e.message) && /not valid YAML/.test(e.message));
    writeFileSync(join(dir, 'list.yaml'), '- 1\n- 2\n');
    assert.throws(() => loadConfigFile(join(dir, 'list.yaml')), (e: unknown) => e instanceof ConfigError && /\(root\)/.test(e.message));
  });

  test('rate limits: false turns them off; an object is per second with a burst', () => {
    assert.equal(parseConfig({ accounts: [account({ rateLimit: false })] }).accounts[0]!.rateLimit, false);
    assert.deepEqual(parseConfig({ accounts: [account({ rateLimit: { perSecond: 5 } })] }).accounts[0]!.rateLimit, { perSecond: 5, burst: 40 });
    assert.deepEqual(parseConfig({ accounts: [account({ rateLimit: { perSecond: 0.5, burst: 2 } })] }).accounts[0]!.rateLimit, { perSecond: 0.5, burst: 2 });
  });
});

describe('refusals', () => {
  test('unknown keys are refused at every level', () => {
    const node = { id: 'edge-1', listen: '127.0.0.1:8081', token: 'tok-0000000000000001' };
    const cases: Array<[unknown, string]> = [
      [{ accounts: [], extra: 1 }, '(root): Unrecognized key: "extra"'],
      [{ server: { port: 8080 } }, 'server: Unrecognized key: "port"'],
      [{ store: { driver: 'sqlite', file: 'x.db' } }, 'store: Unrecognized key: "file"'],
      [{ fanout: { lease: 1 } }, 'fanout: Unrecognized key: "lease"'],
      [{ accounts: [account({ region: 'ap-guangzhou' })] }, 'accounts.0: Unrecognized key: "region"'],
      [{ accounts: [account({ credentials: [{ secretId: 'AKIDacme0001', secretKey: 'acme-secret-key-0001', token: 'x' }] })] }, 'accounts.0.credentials.0: Unrecognized key: "token"'],
      [{ accounts: [account({ zones: [{ zoneId: 'zone-a', name: 'a.com', domains: [], plan: 'free' }] })] }, 'accounts.0.zones.0: Unrecognized key: "plan"'],
      [{ accounts: [account({ zones: [{ zoneId: 'zone-a', name: 'a.com', domains: [{ host: 'a.com', origin: 'http://o:1', area: 'x' }] }] })] }, 'accounts.0.zones.0.domains.0: Unrecognized key: "area"'],
      [{ accounts: [account({ quotas: { purge_urls: { batch: 1, daily: 1 } } })] }, 'accounts.0.quotas: Unrecognized key: "purge_urls"'],
      [{ accounts: [account({ quotas: { purge_url: { batch: 1, daily: 1, monthly: 9 } } })] }, 'accounts.0.quotas.purge_url: Unrecognized key: "monthly"'],
      [{ accounts: [account({ rateLimit: { perSecond: 1, burst: 2, window: 3 } })] }, 'accounts.0.rateLimit'],
      [{ accounts: [account()], nodes: [{ ...node, region: 'x' }] }, 'nodes.0: Unrecognized key: "region"'],
    ];
    for (const [input, expected] of cases) {
      const found = problems(input);
      assert.ok(found.some((p) => p.startsWith(expected)), `${expected} not in ${JSON.stringify(found)}`);
    }
  });

  test('bad values are refused, each naming its path', () => {
    const cases: Array<[unknown, string]> = [
      [{ server: { listen: 'localhost' } }, 'server.listen'],
      [{ server: { listen: '127.0.0.1:65536' } }, 'server.listen'],
      [{ server: { timezone: 'Asia/Shanghai' } }, 'server.timezone'],
      [{ server: { timezone: '+99:99' } }, 'server.timezone'],
      [{ server: { timezone: '+08:60' } }, 'server.timezone'],
      [{ server: { maxBodyBytes: 0 } }, 'server.maxBodyBytes'],
      [{ server: { retentionDays: 1.5 } }, 'server.retentionDays'],
      [{ store: { driver: 'mysql' } }, 'store'],
      [{ fanout: { leaseMs: 120_000 } }, 'fanout.leaseMs'],
      [{ accounts: [account({ appId: '1250000001' })] }, 'accounts.0.appId'],
      [{ accounts: [account({ credentials: [] })] }, 'accounts.0.credentials'],
      [{ accounts: [account({ credentials: [{ secretId: 'AKID acme', secretKey: 'acme-secret-key-0001' }] })] }, 'accounts.0.credentials.0.secretId'],
      [{ accounts: [account({ credentials: [{ secretId: 'AKIDacme0001', secretKey: 'short' }] })] }, 'accounts.0.credentials.0.secretKey'],
      [{ accounts: [account({ quotas: { purge_url: { batch: 0, daily: 10 } } })] }, 'accounts.0.quotas.purge_url.batch'],
      [{ accounts: [account({ quotas: { purge_url: { batch: 20, daily: 10 } } })] }, 'accounts.0.quotas.purge_url: batch (20) exceeds daily (10)'],
      [{ accounts: [account({ rateLimit: true })] }, 'accounts.0.rateLimit'],
      [{ accounts: [account({ rateLimit: { perSecond: -1 } })] }, 'accounts.0.rateLimit'],
      [{ accounts: [account({ zones: [{ zoneId: 'acme', name: 'acme.com' }] })] }, 'accounts.0.zones.0.zoneId'],
      [{ accounts: [account({ zones: [{ zoneId: 'zone-a', name: 'acme.com', domains: [{ host: '*.acme.com', origin: 'http://o:1' }] }] })] }, 'accounts.0.zones.0.domains.0.host'],
      [{ accounts: [account({ zones: [{ zoneId: 'zone-a', name: 'acme.com', domains: [{ host: 'www.acme.com:80', origin: 'http://o:1' }] }] })] }, 'accounts.0.zones.0.domains.0.host'],
      [{ accounts: [account({ zones: [{ zoneId: 'zone-a', name: 'acme.com', domains: [{ host: 'www.acme.com', origin: 'http://o:1/path' }] }] })] }, 'accounts.0.zones.0.domains.0.origin'],
      [{ accounts: [account({ zones: [{ zoneId: 'zone-a', name: 'acme.com', domains: [{ host: 'www.acme.com', origin: 'ftp://o' }] }] })] }, 'accounts.0.zones.0.domains.0.origin'],
      [{ accounts: [account()], nodes: [{ id: 'edge 1', listen: '127.0.0.1:8081', token: 'tok-0000000000000001' }] }, 'nodes.0.id'],
      [{ accounts: [account()], nodes: [{ id: 'edge-1', listen: '127.0.0.1:8081', token: 'short' }] }, 'nodes.0.token'],
      [{ accounts: [account()], nodes: [{ id: 'edge-1', listen: '127.0.0.1:8081', token: 'tok-0000000000000001', hosts: ['img.acme.com'] }] }, 'nodes.0.hosts.0: "img.acme.com" is not a configured domain'],
    ];
    for (const [input, expected] of cases) {
      const found = problems(input);
      assert.ok(found.some((p) => p.startsWith(expected)), `${expected} not in ${JSON.stringify(found)}`);
    }
  });

  test('duplicates across accounts and nodes are refused', () => {
    const found = problems({
      server: { listen: '127.0.0.1:8081' },
      accounts: [account(), account({ name: 'copy' })],
      nodes: [
        { id: 'edge-1', listen: '127.0.0.1:8081', token: 'tok-0000000000000001' },
        { id: 'edge-1', listen: '127.0.0.1:8082', token: 'tok-0000000000000002', metrics: { listen: '127.0.0.1:8082' } },
        // Port 0 picks a free port: never a duplicate.
        { id: 'edge-3', listen: '127.0.0.1:0', token: 'tok-0000000000000003', metrics: { listen: '127.0.0.1:0' } },
      ],
    });
    assert.deepEqual(found, [
      'accounts.1.appId: duplicate appId "1250000001" (also at accounts.0.appId)',
      'accounts.1.credentials.0.secretId: duplicate secretId "AKIDacme0001" (also at accounts.0.credentials.0.secretId)',
      'accounts.1.zones.0.zoneId: duplicate zoneId "zone-acme1" (also at accounts.0.zones.0.zoneId)',
      'accounts.1.zones.0.domains.0.host: duplicate domain host "www.acme.com" (also at accounts.0.zones.0.domains.0.host)',
      'nodes.0.listen: duplicate listen address "127.0.0.1:8081" (also at server.listen)',
      'nodes.1.id: duplicate node id "edge-1" (also at nodes.0.id)',
      'nodes.1.metrics.listen: duplicate listen address "127.0.0.1:8082" (also at nodes.1.listen)',
    ]);
  });

  test('every problem is listed in one message: schema problems and cross-checks together', () => {
    const input = {
      surprise: true,
      server: { listen: 'nowhere', timezone: 'CST' },
      accounts: [
        account({ rateLimit: 'fast', quotas: { purge_url: { batch: 50, daily: 10 } } }),
        account({ name: '', zones: [{ zoneId: 'zone-b', name: 'b.com', domains: [{ host: 'WWW.ACME.COM', origin: 'http://o:1' }] }] }),
      ],
      nodes: [{ id: 'edge-1', listen: '127.0.0.1:8081', token: 'tok-0000000000000001', hosts: ['nope.example'] }],
    };
    let err: ConfigError | undefined;
    try {
      parseConfig(input, 'edgepurge.yaml');
    } catch (e) {
      err = e as ConfigError;
    }
    assert.ok(err instanceof ConfigError);
    const expected = [
      '(root): Unrecognized key: "surprise"',
      'server.listen: must be "host:port"',
      'server.timezone: must be a UTC offset',
      'accounts.0.rateLimit',
      'accounts.1.name',
      // Regression: these cross-checks used to be dropped whenever the schema had failed.
      'accounts.0.quotas.purge_url: batch (50) exceeds daily (10)',
      'accounts.1.appId: duplicate appId',
      'accounts.1.credentials.0.secretId: duplicate secretId',
      'accounts.1.zones.0.domains.0.host: duplicate domain host "www.acme.com"',
      'nodes.0.hosts.0: "nope.example" is not a configured domain',
    ];
    for (const p of expected) assert.ok(err.problems.some((x) => x.startsWith(p)), `${p} not in ${JSON.stringify(err.problems)}`);
    assert.match(err.message, /^invalid configuration edgepurge\.yaml:\n {2}- /);
    assert.equal(err.message.split('\n').length, err.problems.length + 1);
  });
});

describe('store: postgres (issue 9)', () => {
  test('takes a postgres:// URL, a schema and pool settings, with defaults', () => {
    const c = parseConfig({ accounts: [account()], store: { driver: 'postgres', url: 'postgres://edgepurge:pw@db:5432/edgepurge' } });
    assert.deepEqual(c.store, {
      driver: 'postgres', url: 'postgres://edgepurge:pw@db:5432/edgepurge', schema: 'public',
      pool: { max: 10, idleTimeoutMs: 30_000, connectionTimeoutMs: 10_000 },
    });
    const d = parseConfig({ accounts: [account()], store: { driver: 'postgres', url: 'postgresql://db/x', schema: 'edge_a', pool: { max: 4 } } });
    assert.deepEqual(d.store, { driver: 'postgres', url: 'postgresql://db/x', schema: 'edge_a', pool: { max: 4, idleTimeoutMs: 30_000, connectionTimeoutMs: 10_000 } });
  });

  test('refuses every bad postgres setting in one message', () => {
    const found = problems({
      accounts: [account()],
      store: { driver: 'postgres', url: 'mysql://db/x', schema: 'Bad-Name', pool: { max: 1, idle: 5 } },
    });
    for (const expected of ['store.url: must be a "postgres://', 'store.schema', 'store.pool.max', 'store.pool: Unrecognized key: "idle"']) {
      assert.ok(found.some((p) => p.startsWith(expected)), `${expected} not in ${JSON.stringify(found)}`);
    }
    assert.ok(problems({ accounts: [account()], store: { driver: 'postgres' } }).some((p) => p.startsWith('store.url')));
  });
});

describe('nodes[].controlPlane', () => {
  const node = (controlPlane: unknown) => ({ accounts: [account()], nodes: [{ id: 'edge-1', listen: '127.0.0.1:8081', token: 'token-edge-1-0123456789', controlPlane }] });
  test('one URL or a list of replicas', () => {
    assert.equal(parseConfig(node('http://10.0.0.1:8080')).nodes[0]!.controlPlane, 'http://10.0.0.1:8080');
    assert.deepEqual(parseConfig(node(['http://10.0.0.1:8080', 'https://10.0.0.2:8443'])).nodes[0]!.controlPlane, ['http://10.0.0.1:8080', 'https://10.0.0.2:8443']);
  });
  test('an empty list or a bad URL in it is refused', () => {
    assert.match(problems(node([])).join('\n'), /nodes\.0\.controlPlane/);
    assert.match(problems(node(['http://10.0.0.1:8080', 'ftp://10.0.0.2'])).join('\n'), /nodes\.0\.controlPlane/);
  });
});
