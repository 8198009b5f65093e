// The `edgepurge` CLI as users run it (process.execPath src/cli/main.ts …) against a real control plane:
// purge each type, tasks list/show, quota; exit codes 0 ok, 1 API refusal, 2 usage error, 3 unreachable
// or unusable (STYLE 18).
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { normalizeEndpoint } from '../../src/cli/client.ts';
import { COMMANDS } from '../../src/cli/main.ts';
import { ACME, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { runNodeAsEdge } from '../helpers/edge-node.ts';
import { config, JOB_ID } from '../api3/fixtures.ts';
import { until } from '../e2e/helpers.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/edgepurge.js', import.meta.url));

/** This process's environment without our own variables: each run says what it uses. */
function cleanEnv(): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(TENCENTCLOUD_|EDGEPURGE_)/.test(k)) base[k] = v;
  }
  return base;
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI asynchronously (the server lives in this process: a sync spawn would deadlock it). */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const base = cleanEnv();
  return inSlot(
    () =>
      new Promise((resolve) => {
        execFile(process.execPath, [MAIN, ...args], { env: { ...base, ...env }, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
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
  return jobIdOfAny(r);
};

/** The JobId printed, whatever the exit code. */
const jobIdOfAny = (r: Run): string => {
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

  test('flags instead of the environment; refused targets exit 1, listed on stderr; --json prints the response', async (t) => {
    const s = await server(t);
    const flags = ['--endpoint', s.url, '--secret-id', ACME.secretId, '--secret-key', ACME.secretKey];
    const [r, j] = await Promise.all([
      cli(['purge', 'url', `http://${ACME.host}/ok`, 'http://www.globex.com/theirs', ...flags, '--zone', ACME.zoneId]),
      cli(['purge', 'url', `http://${ACME.host}/json`, ...flags, '--json']),
    ]);
    // Regression: a partly refused purge used to exit 0 with the refusal on stdout.
    assert.equal(r.code, 1, r.stderr);
    const jobId = /^JobId (\w+)$/m.exec(r.stdout)?.[1];
    assert.ok(jobId && (await s.store.getJob(ACME.appId, jobId)), 'the accepted part was still submitted');
    assert.match(r.stderr, /^refused \(domain not valid\): http:\/\/www\.globex\.com\/theirs$/m);
    assert.doesNotMatch(r.stdout, /refused/);
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
      [['quota', '--endpoint', `${s.url}/v2/index.php`], env, /--endpoint: .*without a path/],
      [['quota', '--endpoint', 'ftp://127.0.0.1:8080'], env, /--endpoint: .*http:\/\/ or https:\/\//],
      [['purge', 'url', 'http://x/', '--timeout', '5s'], env, /--timeout needs --wait/],
      [['purge', 'url', 'http://x/', '--wait', '--timeout', 'soon'], env, /--timeout takes a duration/],
      [['purge', 'url', '--help', '--colour'], env, /Unknown option '--colour'/],
      [['edge', '--config', 'x.yaml', '--node', 'n', '--control-plane', 'ftp://x'], {}, /--control-plane: .*http:\/\/ or https:\/\//],
      [['agent', '--config', 'x.yaml', '--node', 'n', '--control-plane', '127.0.0.1:8080,ftp://x'], {}, /--control-plane: .*http:\/\/ or https:\/\//],
      [['edge', '--config', 'x.yaml', '--node', 'n', '--control-plane', '127.0.0.1:8080,,127.0.0.1:8081'], {}, /--control-plane: an empty URL/],
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

describe('help and version', () => {
  test('--help on every command and subcommand lists every option it accepts', async () => {
    const runs = await Promise.all(COMMANDS.map((c) => cli([...c.name.split(' '), '--help'])));
    for (const [i, c] of COMMANDS.entries()) {
      const r = runs[i]!;
      assert.equal(r.code, 0, `${c.name} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: edgepurge ${c.name}\\b`), c.name);
      for (const option of Object.keys(c.options)) assert.match(r.stdout, new RegExp(`^  --${option}\\b`, 'm'), `${c.name} --help lacks --${option}`);
    }
    // Regression (issue 10): options that were accepted but never listed, and `purge url --help` refused.
    const help = (name: string) => runs[COMMANDS.findIndex((c) => c.name === name)]!.stdout;
    for (const [name, option] of [['purge url', 'encode-url'], ['purge url', 'method'], ['purge tag', 'method'], ['tasks list', 'prefetch'], ['edge', 'control-plane'], ['purge prefix', 'wait']]) {
      assert.match(help(name!), new RegExp(`--${option}`), `${name} --help lacks --${option}`);
    }
  });

  test('help COMMAND, a group\'s --help, --version', async () => {
    const [helpUrl, urlHelp, group, short, version, bare] = await Promise.all([
      cli(['help', 'purge', 'url']),
      cli(['purge', 'url', '-h']),
      cli(['purge', '--help']),
      cli(['help']),
      cli(['--version']),
      cli(['version']),
    ]);
    assert.equal(helpUrl.code, 0);
    assert.equal(helpUrl.stdout, urlHelp.stdout);
    assert.equal(group.code, 0);
    for (const kind of ['url', 'prefix', 'host', 'all', 'tag']) assert.match(group.stdout, new RegExp(`^usage: edgepurge purge ${kind}\\b`, 'm'));
    for (const c of COMMANDS) assert.ok(short.stdout.includes(`edgepurge ${c.name}`), `help lacks ${c.name}`);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(version.code, 0);
    assert.match(version.stdout, new RegExp(`^edgepurge ${pkg.version.replace(/\./g, '\\.')} \\(Node v\\d+`));
    assert.equal(bare.stdout, version.stdout);
  });

  test('package.json engines, the README and bin/edgepurge.js agree: an older node runs the CLI on the pinned Node 24', async (t) => {
    // Regression (issue 10): the README said "any version" while engines ">=24" made npm warn EBADENGINE.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
    const min = Number(/^>=(\d+)$/.exec(pkg.engines.node)?.[1]);
    assert.ok(min >= 18 && min < 24, `engines.node is ${pkg.engines.node}`);
    assert.ok(readFileSync(new URL('../../README.md', import.meta.url), 'utf8').includes(`Needs Node.js ${min} or newer`), 'README names the same minimum');
    const system = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => existsSync(p));
    const major = system ? Number(execFileSync(system, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim()) : undefined;
    if (!system || major === undefined || major >= 24 || major < min) {
      if (process.env.CI === 'true' && !system) assert.fail('no system node to run bin/edgepurge.js with');
      t.skip(`no system node older than 24 here (${system ?? 'none'} ${major ?? ''}): the re-exec path is not exercised`);
      return;
    }
    const r = await new Promise<Run>((resolve) =>
      execFile(system, [BIN, '--version'], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr })),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^edgepurge \S+ \(Node v24\./);
  });
});

/** The CLI with its output readable while it runs (execFile only hands it over at the end). */
function cliLive(argv: readonly string[], env: Record<string, string>, command: (args: string[]) => [string, string[]] = (a) => [process.execPath, a]) {
  const [file, args] = command([MAIN, ...argv]);
  const child = spawn(file, args, { env: { ...cleanEnv(), ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
  const timer = setTimeout(() => child.kill(), 60_000);
  void done.then(() => clearTimeout(timer));
  return { output: () => stdout, done };
}

const NODE_TOKEN = 'node-token-0000000000000000';
/** One nginx node on ACME's www with no agent: nginx is never fenced, so its tasks wait until it applies them. */
const waitingFleet = (taskTimeoutMs: number) =>
  config(undefined, {
    fanout: { leaseMs: 2000, taskTimeoutMs },
    nodes: [{ id: 'nginx-a', token: NODE_TOKEN, hosts: [ACME.host], driver: { type: 'nginx', url: 'http://127.0.0.1:9', purgeUrl: 'http://127.0.0.1:9', cacheDir: '/nonexistent/edgepurge' } }],
  });

describe('--wait', () => {
  test('piped: plain progress lines until every task succeeded, exit 0', async (t) => {
    const input = waitingFleet(120_000);
    const s = await startControlPlane(t, input, { heartbeatMs: 100 });
    const run = cliLive(['purge', 'url', `http://${ACME.host}/w.js`, `http://${ACME.host2}/other.js`, '--wait', '--timeout', '60s'], envFor(s));
    // www's task waits for nginx-a; img's has no node, so it succeeds at once.
    await until('the CLI shows the node waiting', () => /^nginx-a: 0\/1 /m.test(run.output()) && /^tasks: (1 success, 1 processing|1 processing, 1 success)$/m.test(run.output()), 30_000);
    await runNodeAsEdge(t, input, 'nginx-a', s.url);
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^JobId \w+\nnginx-a: 0\/1 /);
    assert.match(r.stdout, /^nginx-a: 1\/1 {2}\(applied 1, fenced 0, failed 0\)$/m);
    assert.match(r.stdout, /^tasks: 2 success$/m);
    assert.doesNotMatch(r.stdout, /\x1b\[/, 'no terminal codes in a pipe');
  });

  test('on a terminal: a bar per node, redrawn in place', async (t) => {
    if (!existsSync('/usr/bin/script')) {
      if (process.env.CI === 'true') assert.fail('util-linux `script` is needed to give the CLI a terminal');
      return t.skip('no /usr/bin/script (util-linux) to give the CLI a terminal');
    }
    const input = waitingFleet(120_000);
    const s = await startControlPlane(t, input, { heartbeatMs: 100 });
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    // script(1) runs the command on a new pseudo-terminal, so stdout.isTTY is true.
    const run = cliLive(['purge', 'prefix', `http://${ACME.host}/tty/`, '--wait'], { ...envFor(s), COLUMNS: '100' }, (a) => ['/usr/bin/script', ['-qec', [process.execPath, ...a].map(quote).join(' '), '/dev/null']]);
    await until('the bar shows the node waiting', () => /nginx-a \[-+\] 0\/1/.test(run.output()), 30_000);
    await runNodeAsEdge(t, input, 'nginx-a', s.url);
    const r = await run.done;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /nginx-a \[#+\] 1\/1 {2}\(applied 1, fenced 0, failed 0\)\x1b\[K/);
    assert.match(r.stdout, /\x1b\[\d+F/, 'the block is redrawn from its first line');
  });

  test('a task that times out: exit 1 with the task on stderr; --json prints the settled job', async (t) => {
    const s = await startControlPlane(t, waitingFleet(1000), { heartbeatMs: 100 });
    const [r, j] = await Promise.all([
      cli(['purge', 'url', `http://${ACME.host}/slow.js`, '--wait'], envFor(s)),
      cli(['prefetch', `http://${ACME.host}/slow.bin`, '--wait', '--json'], envFor(s)),
    ]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /^timeout: http:\/\/www\.acme\.com\/slow\.js — not applied within 1 s by: nginx-a$/m);
    assert.equal(j.code, 1, j.stderr);
    const body = JSON.parse(j.stdout) as { JobId: string; Job: { JobId: string; Tasks: Array<{ Status: string }> } };
    assert.equal(body.Job.JobId, body.JobId);
    assert.deepEqual(body.Job.Tasks.map((x) => x.Status), ['timeout']);
  });

  test('its own --timeout: exit 4, says the job goes on; tasks show --wait likewise', async (t) => {
    const s = await startControlPlane(t, waitingFleet(120_000), { heartbeatMs: 100 });
    // 5 s: time enough on a loaded machine for the first view to arrive before giving up.
    const r = await cli(['purge', 'host', ACME.host, '--wait', '--timeout', '5s'], envFor(s));
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const jobId = jobIdOfAny(r);
    assert.match(r.stderr, new RegExp(`^gave up waiting after 5 s: 1 of 1 tasks still processing\\. The job goes on; follow it with: edgepurge tasks show ${jobId}`, 'm'));
    assert.equal((await s.store.jobTasks(ACME.appId, jobId))[0]?.status, 'processing');
    const show = await cli(['tasks', 'show', jobId, '--wait', '--timeout', '5s'], envFor(s));
    assert.equal(show.code, 4, show.stderr);
    assert.match(show.stdout, /^nginx-a: 0\/1 /m);
    assert.match(show.stdout, /^Per-node progress:$/m);
  });
});

describe('nodes', () => {
  test('the fleet table and --json', async (t) => {
    const s = await startControlPlane(t, waitingFleet(120_000), { heartbeatMs: 100 });
    jobIdOf(await cli(['purge', 'url', `http://${ACME.host}/n.js`], envFor(s)));
    const [table, json, globex] = await Promise.all([cli(['nodes'], envFor(s)), cli(['nodes', '--json'], envFor(s)), cli(['nodes'], envFor(s, GLOBEX))]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Node\s+Driver\s+Connected\s+AckedSeq\s+Lag\s+LagSeconds\s+Lease\s+LastSeen$/m);
    assert.match(table.stdout, /^nginx-a\s+nginx\s+no\s+0\s+1\s+[\d.]+\s+unfenced\s+never$/m);
    assert.match(table.stdout, /^log end: seq 1$/m);
    const body = JSON.parse(json.stdout) as { LastSeq: number; Nodes: Array<{ NodeId: string; Hosts: string[] }> };
    assert.deepEqual(body.Nodes.map((n) => [n.NodeId, n.Hosts]), [['nginx-a', [ACME.host]]]);
    assert.equal(globex.code, 0);
    assert.match(globex.stdout, /^no edge node serves this account's hosts$/m);
  });
});

describe('endpoint and start-up errors', () => {
  test('--endpoint takes what the banner prints: with or without http://, with a trailing slash', async (t) => {
    const s = await server(t);
    const env = envFor(s);
    const runs = await Promise.all([s.endpoint, `${s.url}/`, ` ${s.url} `].map((e) => cli(['quota', '--endpoint', e], env)));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.equal(normalizeEndpoint('127.0.0.1:8080'), 'http://127.0.0.1:8080');
    assert.equal(normalizeEndpoint('HTTPS://Example.com/'), 'https://example.com');
    assert.equal(normalizeEndpoint('[::1]:8080'), 'http://[::1]:8080');
    for (const bad of ['http://u:p@127.0.0.1:8080', 'http://127.0.0.1:8080/?x=1', 'mailto:x', '']) assert.throws(() => normalizeEndpoint(bad), Error, bad);
  });

  test('a process that cannot start says why, not "is the control plane running"', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'edgepurge-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const busy = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    t.after(() => busy.close());
    const port = (busy.address() as { port: number }).port;
    const path = join(dir, 'edgepurge.yaml');
    writeFileSync(path, `server: { listen: "127.0.0.1:${port}" }\nstore: { driver: sqlite, path: ${join(dir, 'db')} }\nnodes: [{ id: edge-1, listen: "127.0.0.1:1", token: tokentokentokentoken }]\n`);
    const [inUse, noNode] = await Promise.all([cli(['serve', '--config', path]), cli(['edge', '--config', path, '--node', 'edge-9'])]);
    assert.equal(inUse.code, 3);
    assert.match(inUse.stderr, /^error: could not start: .*EADDRINUSE/m);
    assert.match(inUse.stderr, /another process listens on that address/);
    assert.equal(noNode.code, 3);
    assert.match(noNode.stderr, /^error: could not start: no node "edge-9" in the config's nodes list \(have: edge-1\)/m);
    for (const r of [inUse, noNode]) assert.doesNotMatch(r.stderr, /reachable/);
  });
});
