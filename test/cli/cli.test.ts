// The `edgepurge` CLI as users run it (process.execPath src/cli/main.ts …) against a real control plane:
// purge each type, tasks list/show, quota; exit codes 0 ok, 1 API refusal, 2 usage error, 3 unreachable
// or unusable (STYLE 18).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ACME, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { config, JOB_ID } from '../api3/fixtures.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI asynchronously (the server lives in this process: a sync spawn would deadlock it). */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(TENCENTCLOUD_|EDGEPURGE_)/.test(k)) base[k] = v;
  }
  return inSlot(
    () =>
      new Promise((resolve) => {
        execFile(process.execPath, [MAIN, ...args], { env: { ...base, ...env }, encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          resolve({ code, stdout, stderr });
        });
      }),
  );
}

/** At most 4 CLI processes at once: a burst of them on a loaded 2-core machine would each outrun the timeout. */
let running = 0;
const waiting: Array<() => void> = [];
async function inSlot<T>(f: () => Promise<T>): Promise<T> {
  while (running >= 4) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await f();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

const envFor = (s: TestServer, who: { secretId: string; secretKey: string } = ACME) => ({
  EDGEPURGE_ENDPOINT: s.url,
  TENCENTCLOUD_SECRET_ID: who.secretId,
  TENCENTCLOUD_SECRET_KEY: who.secretKey,
});

const jobIdOf = (r: Run): string => {
  assert.equal(r.code, 0, r.stderr);
  const m = /^JobId ([0-9a-z]{12,24})$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  return m[1]!;
};

async function server(t: TestContext): Promise<TestServer> {
  return startControlPlane(t, config());
}

describe('purge', () => {
  test('each purge type, with credentials from the environment', async (t) => {
    const s = await server(t);
    const env = envFor(s);
    // Independent calls run side by side: each CLI start costs a few hundred ms.
    const [url, prefix, host, all, tag, prefetch] = (
      await Promise.all([
        cli(['purge', 'url', `http://${ACME.host}/a.js`, `http://${ACME.host2}/b.css`], env),
        cli(['purge', 'prefix', `http://${ACME.host}/img/`, '--method', 'delete'], env),
        cli(['purge', 'host', ACME.host, '--zone', ACME.zoneId], env),
        cli(['purge', 'all', '--zone', ACME.zoneId2], env),
        cli(['purge', 'tag', 'product-1', 'product-2', '--domains', `${ACME.host}, ${ACME.host2}`], env),
        cli(['prefetch', `http://${ACME.host}/warm.bin`], { ...env, EDGEPURGE_ZONE: ACME.zoneId }),
      ])
    ).map(jobIdOf) as [string, string, string, string, string, string];

    const tasks = async (jobId: string) => (await s.store.jobTasks(ACME.appId, jobId)).map((x) => [x.type, x.method, x.target]);
    assert.deepEqual((await tasks(url)).sort(), [
      ['purge_url', 'delete', `http://${ACME.host2}/b.css`],
      ['purge_url', 'delete', `http://${ACME.host}/a.js`],
    ]);
    assert.deepEqual(await tasks(prefix), [['purge_prefix', 'delete', `http://${ACME.host}/img/`]]);
    assert.deepEqual(await tasks(host), [['purge_host', 'invalidate', ACME.host]]);
    assert.deepEqual(await tasks(all), [['purge_all', 'invalidate', 'acme.org']]);
    assert.deepEqual(await tasks(tag), [['purge_cache_tag', 'delete', 'product-1'], ['purge_cache_tag', 'delete', 'product-2']]);
    assert.deepEqual(await tasks(prefetch), [['prefetch_url', 'invalidate', `http://${ACME.host}/warm.bin`]]);
    const job = await s.store.getJob(ACME.appId, url);
    assert.equal(job?.secretId, ACME.secretId);
  });

  test('flags instead of the environment; refused targets are printed; --json prints the response', async (t) => {
    const s = await server(t);
    const flags = ['--endpoint', s.url, '--secret-id', ACME.secretId, '--secret-key', ACME.secretKey];
    const [r, j] = await Promise.all([
      cli(['purge', 'url', `http://${ACME.host}/ok`, 'http://www.globex.com/theirs', ...flags, '--zone', ACME.zoneId]),
      cli(['purge', 'url', `http://${ACME.host}/json`, ...flags, '--json']),
    ]);
    jobIdOf(r);
    assert.match(r.stdout, /^refused \(domain not valid\): http:\/\/www\.globex\.com\/theirs$/m);
    assert.equal(j.code, 0);
    const body = JSON.parse(j.stdout) as { JobId: string; FailedList: unknown[]; RequestId: string };
    assert.match(body.JobId, JOB_ID);
    assert.deepEqual(body.FailedList, []);
  });
});

describe('tasks and quota', () => {
  test('tasks list (table, filters, --json) and tasks show', async (t) => {
    const s = await server(t);
    const env = envFor(s);
    const [url, tag] = (await Promise.all([cli(['purge', 'url', `http://${ACME.host}/list/a.js`], env), cli(['purge', 'tag', 'news', '--zone', ACME.zoneId], env)])).map(jobIdOf) as [string, string];
    const [list, byType, fuzzy, none, show, missing] = await Promise.all([
      cli(['tasks', 'list'], env),
      cli(['tasks', 'list', '--type', 'tag', '--json'], env),
      cli(['tasks', 'list', '--target', 'LIST/', '--fuzzy', '--since', '1h', '--limit', '5', '--json'], env),
      cli(['tasks', 'list', '--status', 'failed'], env),
      cli(['tasks', 'show', url], env),
      cli(['tasks', 'show', '9999999999999999'], env),
    ]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    assert.match(lines[0]!, /^JobId\s+Type\s+Method\s+Status\s+Target\s+CreateTime\s+UpdateTime$/);
    assert.match(list.stdout, new RegExp(`^${tag}\\s+purge_cache_tag\\s+delete\\s+success\\s+news\\s`, 'm'));
    assert.match(list.stdout, new RegExp(`^${url}\\s+purge_url\\s+delete\\s+success\\s+http://${ACME.host}/list/a\\.js\\s`, 'm'));
    assert.equal(lines.at(-1), '2 of 2 tasks');

    // Regression: `--type tag` used to ask for the non-existent type purge_tag.
    assert.equal(byType.code, 0, byType.stderr);
    assert.deepEqual((JSON.parse(byType.stdout) as { Tasks: Array<{ JobId: string }> }).Tasks.map((x) => x.JobId), [tag]);
    assert.deepEqual((JSON.parse(fuzzy.stdout) as { Tasks: Array<{ JobId: string }> }).Tasks.map((x) => x.JobId), [url]);
    assert.equal(none.code, 0);
    assert.match(none.stdout, /0 of 0 tasks/);

    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^${url}\\s+purge_url\\s+delete\\s+success\\s+http://${ACME.host}/list/a\\.js`, 'm'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no job 9999999999999999 in this account/);
  });

  test('quota shows live counters', async (t) => {
    const s = await server(t);
    const env = envFor(s);
    jobIdOf(await cli(['purge', 'url', `http://${ACME.host}/q1`, `http://${ACME.host}/q2`], env));
    const [q, j] = await Promise.all([cli(['quota', '--zone', ACME.zoneId], env), cli(['quota', '--json'], env)]);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /^Type\s+Batch\s+Daily\s+DailyAvailable$/m);
    assert.match(q.stdout, /^purge_url\s+1000\s+10000\s+9998$/m);
    assert.match(q.stdout, /^prefetch_url\s+500\s+1000\s+1000$/m);
    const body = JSON.parse(j.stdout) as { PurgeQuota: Array<{ Type: string; DailyAvailable: number }> };
    assert.equal(body.PurgeQuota.find((x) => x.Type === 'purge_url')?.DailyAvailable, 9998);
  });
});

describe('exit codes', () => {
  test('1: the API refused (code, message and RequestId on stderr)', async (t) => {
    const s = await server(t);
    const env = envFor(s);
    const [all, foreign, wrongKey, tooMany] = await Promise.all([
      cli(['purge', 'all'], env),
      cli(['purge', 'host', 'www.globex.com'], env),
      cli(['quota'], { ...env, TENCENTCLOUD_SECRET_KEY: 'wrong-key-00000000000000' }),
      cli(['tasks', 'list', '--since', '7d', '--status', 'done'], env),
    ]);
    assert.equal(all.code, 1);
    assert.match(all.stderr, /^error InvalidParameter\.ParameterError: .*purge_all/m);
    assert.match(all.stderr, /RequestId [0-9a-f-]{36}/);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /InvalidParameter\.DomainNotFound/);
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /AuthFailure\.SignatureFailure/);
    assert.equal(tooMany.code, 1);
    assert.match(tooMany.stderr, /InvalidParameter\.ParameterError/);
    assert.equal((await s.store.listTasks({ appId: ACME.appId, offset: 0, limit: 10 })).total, 0);
  });

  test('2: usage errors, before anything is sent', async (t) => {
    const s = await server(t);
    const env = envFor(s);
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['frobnicate'], env, /unknown command "frobnicate"/],
      [[], env, /edgepurge purge url/],
      [['purge', 'everything'], env, /purge takes one of/],
      [['purge', 'url'], env, /needs at least one target/],
      [['purge', 'url', 'http://x/', '--colour'], env, /Unknown option '--colour'/],
      [['tasks'], env, /tasks takes list or show/],
      [['tasks', 'show'], env, /needs a JOBID/],
      [['tasks', 'list', '--since', 'forever'], env, /--since takes a duration/],
      [['tasks', 'list', '--since', '8d'], env, /limited to 7d/],
      // Regression: a non-numeric --limit used to be sent as null and silently ignored.
      [['tasks', 'list', '--limit', 'lots'], env, /--limit takes a number/],
      [['tasks', 'list', '--limit', '5000'], env, /--limit takes a number/],
      [['quota'], { EDGEPURGE_ENDPOINT: s.url }, /credentials missing/],
      [['quota', '--endpoint', '127.0.0.1:8080'], env, /--endpoint must be a URL/],
      [['serve'], {}, /serve needs --config FILE/],
    ];
    const [help, ...runs] = await Promise.all([cli(['help']), ...cases.map(([args, e]) => cli(args, e))]);
    for (const [i, [args, , message]] of cases.entries()) {
      const r = runs[i]!;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, message, args.join(' '));
    }
    assert.equal((await s.store.listTasks({ appId: ACME.appId, offset: 0, limit: 10 })).total, 0);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /edgepurge tasks list/);
  });

  test('3: the server is unreachable, or the config cannot be used', async (t) => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => resolve(p));
      });
    });
    const env = { EDGEPURGE_ENDPOINT: `http://127.0.0.1:${port}`, TENCENTCLOUD_SECRET_ID: ACME.secretId, TENCENTCLOUD_SECRET_KEY: ACME.secretKey };
    const unreachable = await Promise.all([['purge', 'url', `http://${ACME.host}/a`], ['tasks', 'list'], ['quota']].map((args) => cli(args, env)));
    for (const r of unreachable) {
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /is the control plane running and reachable\?/);
    }
    // A bad config is refused at start with one message listing every problem.
    const dir = mkdtempSync(join(tmpdir(), 'edgepurge-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'edgepurge.yaml');
    writeFileSync(path, 'server: { listen: "127.0.0.1:0", timezone: Beijing, colour: blue }\naccounts: [{ appId: 0, name: a, credentials: [] }]\n');
    const r = await cli(['serve', '--config', path]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, new RegExp(`invalid configuration ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:`));
    for (const p of ['server.timezone', 'server: Unrecognized key: "colour"', 'accounts.0.appId', 'accounts.0.credentials']) assert.ok(r.stderr.includes(p), p);
  });
});
