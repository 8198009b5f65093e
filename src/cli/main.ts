// The `edgepurge` command: noun-first subcommands (STYLE 18). User errors exit 2, remote API refusals
// exit 1, system failures (unreachable server, bad config) exit 3.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfigFile } from '../config/load.ts';
import { createLogger, type LogLevel } from '../shared/logger.ts';
import { callApi, getAdminJob, RemoteError, type Endpoint } from './client.ts';
import { demoConfig } from './default-config.ts';
// The server side (store, protocols, caches, drivers) loads only for the commands that run it, so a
// client command starts in a fraction of the time.
const startControlPlane = async (...a: Parameters<typeof import('./serve.ts').startControlPlane>) => (await import('./serve.ts')).startControlPlane(...a);
const startEdgeNode = async (...a: Parameters<typeof import('./edge.ts').startEdgeNode>) => (await import('./edge.ts')).startEdgeNode(...a);
const startAgent = async (...a: Parameters<typeof import('./agent.ts').startAgent>) => (await import('./agent.ts')).startAgent(...a);
const startDemoOrigin = async (...a: Parameters<typeof import('./demo-origin.ts').startDemoOrigin>) => (await import('./demo-origin.ts')).startDemoOrigin(...a);
import { splitHostPort } from '../shared/host-port.ts';
import { systemClock } from '../shared/clock.ts';
import { printTable } from './table.ts';

const TEO = '2022-09-01';

class UsageError extends Error {}

/** `edgepurge purge <kind>` and `tasks list --type <kind>` → EdgeOne purge type. */
const PURGE_KINDS: Readonly<Record<string, string>> = { url: 'purge_url', prefix: 'purge_prefix', host: 'purge_host', all: 'purge_all', tag: 'purge_cache_tag' };

const HELP = `edgepurge — self-hosted CDN cache purge, speaking Tencent Cloud's CDN and EdgeOne APIs

Server:
  edgepurge start [--config edgepurge.yaml]      write a demo config if missing, then run the control
                                                  plane, every configured edge node and the demo origin
  edgepurge serve --config FILE                   run the control plane
  edgepurge edge --config FILE --node ID          run one edge node (caching proxy + purge-log stream)
  edgepurge agent --config FILE --node ID         apply the purge log to the node's Varnish or nginx
  edgepurge agent vcl                             print the VCL a Varnish includes (src/drivers/varnish)
  edgepurge agent nginx-conf                      print the nginx snippet (src/drivers/nginx)

Client (signed API 3.0 calls; --endpoint/--secret-id/--secret-key or EDGEPURGE_ENDPOINT,
TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY; --zone or EDGEPURGE_ZONE, default "*"):
  edgepurge purge url URL...                      purge_url
  edgepurge purge prefix URL...  [--method invalidate|delete]
  edgepurge purge host HOST...   [--method invalidate|delete]
  edgepurge purge all --zone ZONE [--method invalidate|delete]
  edgepurge purge tag TAG... [--domains a.com,b.com]
  edgepurge prefetch URL...
  edgepurge tasks list [--since 24h] [--status S] [--domain D] [--target T [--fuzzy]] [--type T] [--limit N]
  edgepurge tasks show JOBID                      a job's tasks and each edge node's progress on them
  edgepurge quota --zone ZONE
Add --json for machine-readable output.`;

const clientOptions = {
  endpoint: { type: 'string' },
  'secret-id': { type: 'string' },
  'secret-key': { type: 'string' },
  zone: { type: 'string' },
  json: { type: 'boolean' },
} satisfies ParseArgsConfig['options'];

function endpoint(v: { endpoint?: string | undefined; 'secret-id'?: string | undefined; 'secret-key'?: string | undefined }): Endpoint {
  const url = v.endpoint ?? process.env.EDGEPURGE_ENDPOINT ?? 'http://127.0.0.1:8080';
  const secretId = v['secret-id'] ?? process.env.TENCENTCLOUD_SECRET_ID;
  const secretKey = v['secret-key'] ?? process.env.TENCENTCLOUD_SECRET_KEY;
  if (!secretId || !secretKey) throw new UsageError('credentials missing: pass --secret-id/--secret-key or set TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY');
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--endpoint must be a URL like http://127.0.0.1:8080 (got "${url}")`);
  return { url, secretId, secretKey };
}

const zoneOf = (v: { zone?: string | undefined }) => v.zone ?? process.env.EDGEPURGE_ZONE ?? '*';

function parseDuration(s: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(s);
  if (!m) throw new UsageError(`--since takes a duration like 30m, 24h or 7d (got "${s}")`);
  return Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

function logLevel(): LogLevel {
  const l = process.env.EDGEPURGE_LOG_LEVEL;
  return l === 'debug' || l === 'info' || l === 'warn' || l === 'error' || l === 'silent' ? l : 'info';
}

async function serve(args: string[], writeDemo: boolean): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } });
  const path = resolve(values.config ?? (writeDemo ? 'edgepurge.yaml' : ''));
  if (!values.config && !writeDemo) throw new UsageError('serve needs --config FILE');
  let demo: ReturnType<typeof demoConfig> | undefined;
  if (writeDemo && !existsSync(path)) {
    demo = demoConfig();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, demo.yaml, { mode: 0o600, flag: 'wx' });
  }
  const config = loadConfigFile(path);
  const logger = createLogger(logLevel());
  const closers: Array<() => Promise<void>> = [];
  const running = await startControlPlane(config, logger);
  closers.push(() => running.close());
  const base = `http://${running.host}:${running.port}`;
  const out: string[] = [`EdgePurge control plane on ${base}  (API 3.0 at /, legacy v2 at /v2/index.php)`, `config: ${path}`];
  if (writeDemo) {
    // The embedded default: every node of the config in this process, and the demo origin.
    if (config.demo) {
      const origin = await startDemoOrigin(splitHostPort(config.demo.origin), systemClock);
      closers.push(() => origin.close());
      out.push(`demo origin on http://${config.demo.origin}`);
    }
    for (const n of config.nodes) {
      if (n.driver !== undefined) {
        out.push(`node ${n.id} (${n.driver.type}): run \`edgepurge agent --config FILE --node ${n.id}\` beside that cache`);
        continue;
      }
      const edge = await startEdgeNode(config, n.id, logger, { controlPlane: base });
      closers.push(() => edge.close());
      out.push(`edge node ${n.id} on http://${n.listen}`);
    }
  }
  if (demo) {
    out.push('', 'A demo configuration was written with fresh credentials:', `  SecretId:  ${demo.secretId}`, `  SecretKey: ${demo.secretKey}`, `  endpoint:  ${running.host}:${running.port} (protocol http://)`);
  } else if (writeDemo) {
    out.push('credentials: see the accounts section of the config file');
  }
  const edge = config.nodes.find((n) => n.listen !== undefined);
  const host = config.accounts[0]?.zones[0]?.domains[0]?.host;
  const zone = config.accounts[0]?.zones[0]?.zoneId;
  if (writeDemo && edge && host && zone) {
    const cred = config.accounts[0]!.credentials[0]!;
    out.push(
      '',
      'Try it (in another terminal):',
      `  curl -si -H 'Host: ${host}' http://${edge.listen}/hello.html | grep -i x-cache     # MISS, then HIT`,
      `  export TENCENTCLOUD_SECRET_ID=${cred.secretId} TENCENTCLOUD_SECRET_KEY=${cred.secretKey}`,
      `  ./bin/edgepurge.js purge url http://${host}/hello.html --zone ${zone}`,
      `  curl -si -H 'Host: ${host}' http://${edge.listen}/hello.html | grep -i x-cache     # MISS again`,
    );
  }
  const stop = () => {
    void Promise.all(closers.reverse().map((c) => c())).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // DESIGN "Declarative configuration": the file is validated again and applied on SIGHUP; a bad
  // file is reported and the running configuration kept.
  process.on('SIGHUP', () => {
    try {
      const next = loadConfigFile(path);
      const notes = running.controlPlane.reload(next);
      if (writeDemo && config.nodes.length) notes.push('edge nodes started by `start` keep their domains and origins until a restart');
      logger.info('configuration reloaded', { config: path, ...(notes.length ? { notes } : {}) });
    } catch (e) {
      logger.error('configuration not reloaded; keeping the running one', { config: path, error: e instanceof Error ? e.message : String(e) });
    }
  });
  // Printed last: whoever waits for this line may signal the process right away.
  process.stdout.write(`${out.join('\n')}\n`);
}

async function edge(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, node: { type: 'string' }, 'control-plane': { type: 'string' } } });
  if (!values.config || !values.node) throw new UsageError('edge needs --config FILE --node ID');
  const config = loadConfigFile(resolve(values.config));
  const logger = createLogger(logLevel());
  const running = await startEdgeNode(config, values.node, logger, values['control-plane'] ? { controlPlane: values['control-plane'] } : {});
  const stop = () => {
    void running.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stdout.write(`EdgePurge edge node ${running.node.id} on http://${running.listen.replace(/:\d+$/, '')}:${running.port}\n`);
}

/** `edgepurge agent …`: runs a driver node's agent (-1: keeps running), or prints a shipped cache config (0). */
async function agent(args: string[]): Promise<number> {
  if (args[0] === 'vcl') {
    const { edgepurgeVcl } = await import('../drivers/varnish/edgepurge-vcl.ts');
    process.stdout.write(edgepurgeVcl());
    return 0;
  }
  if (args[0] === 'nginx-conf') {
    const { nginxSnippet } = await import('../drivers/nginx/nginx-snippet.ts');
    process.stdout.write(nginxSnippet());
    return 0;
  }
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, node: { type: 'string' }, 'control-plane': { type: 'string' } } });
  if (!values.config || !values.node) throw new UsageError('agent needs --config FILE --node ID (or: agent vcl | agent nginx-conf)');
  const file = resolve(values.config);
  const config = loadConfigFile(file);
  const logger = createLogger(logLevel());
  const running = await startAgent(config, values.node, logger, { baseDir: dirname(file), ...(values['control-plane'] ? { controlPlane: values['control-plane'] } : {}) });
  const stop = () => {
    void running.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stdout.write(`EdgePurge agent for node ${running.node.id} (${running.driver.name}), applied seq ${running.target.appliedSeq}\n`);
  return -1;
}

async function purge(args: string[]): Promise<void> {
  const [kind, ...rest] = args;
  const type = kind ? PURGE_KINDS[kind] : undefined;
  if (!type) throw new UsageError('purge takes one of: url, prefix, host, all, tag');
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { ...clientOptions, method: { type: 'string' }, domains: { type: 'string' }, 'encode-url': { type: 'boolean' } },
  });
  if (type !== 'purge_all' && positionals.length === 0) throw new UsageError(`purge ${kind} needs at least one target`);
  const params: Record<string, unknown> = { ZoneId: zoneOf(values), Type: type };
  if (type !== 'purge_all') params.Targets = positionals;
  if (values.method) params.Method = values.method;
  if (values['encode-url']) params.EncodeUrl = true;
  if (values.domains) params.CacheTag = { Domains: values.domains.split(',').map((d) => d.trim()).filter(Boolean) };
  const r = await callApi(endpoint(values), 'teo', TEO, 'CreatePurgeTask', params);
  printSubmitted(r, values.json);
}

function printSubmitted(r: Record<string, unknown>, json: boolean | undefined): void {
  if (json) return void process.stdout.write(`${JSON.stringify(r)}\n`);
  process.stdout.write(`JobId ${String(r.JobId)}\n`);
  for (const f of (r.FailedList as Array<{ Reason: string; Targets: string[] }> | null) ?? []) {
    process.stdout.write(`refused (${f.Reason}): ${f.Targets.join(' ')}\n`);
  }
}

async function prefetch(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: clientOptions });
  if (positionals.length === 0) throw new UsageError('prefetch needs at least one URL');
  const r = await callApi(endpoint(values), 'teo', TEO, 'CreatePrefetchTask', { ZoneId: zoneOf(values), Targets: positionals });
  printSubmitted(r, values.json);
}

async function tasks(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...clientOptions,
      since: { type: 'string' },
      status: { type: 'string' },
      domain: { type: 'string' },
      target: { type: 'string' },
      fuzzy: { type: 'boolean' },
      type: { type: 'string' },
      limit: { type: 'string' },
      prefetch: { type: 'boolean' },
    },
  });
  const ep = endpoint(values);
  const filters: Array<Record<string, unknown>> = [];
  const params: Record<string, unknown> = {};
  if (zoneOf(values) !== '*') params.ZoneId = zoneOf(values);
  if (sub === 'show') {
    const jobId = positionals[0];
    if (!jobId) throw new UsageError('tasks show needs a JOBID');
    filters.push({ Name: 'job-id', Values: [jobId] });
    params.Limit = 1000;
  } else if (sub === 'list') {
    const now = systemClock.now();
    const since = parseDuration(values.since ?? '24h');
    if (since > 7 * 8.64e7) throw new UsageError('--since is limited to 7d (the API refuses longer ranges)');
    params.StartTime = new Date(now - since).toISOString();
    params.EndTime = new Date(now).toISOString();
    const limit = values.limit ?? '50';
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000) throw new UsageError(`--limit takes a number from 1 to 1000 (got "${limit}")`);
    params.Limit = Number(limit);
    if (values.status) filters.push({ Name: 'statuses', Values: values.status.split(',') });
    if (values.domain) filters.push({ Name: 'domains', Values: values.domain.split(',') });
    if (values.target) filters.push({ Name: 'target', Values: [values.target], ...(values.fuzzy ? { Fuzzy: true } : {}) });
    // The same words as `purge <kind>`: `--type tag` means purge_cache_tag.
    if (values.type) filters.push({ Name: 'type', Values: [values.type.startsWith('purge_') ? values.type : (PURGE_KINDS[values.type] ?? `purge_${values.type}`)] });
  } else {
    throw new UsageError('tasks takes list or show');
  }
  if (filters.length) params.Filters = filters;
  const action = values.prefetch ? 'DescribePrefetchTasks' : 'DescribePurgeTasks';
  let r = await callApi(ep, 'teo', TEO, action, params);
  if (sub === 'show' && !values.prefetch && (r.TotalCount as number) === 0) r = await callApi(ep, 'teo', TEO, 'DescribePrefetchTasks', params);
  // DESIGN invariant 3: a job's per-node progress is shown (the admin endpoint of the same server).
  const progress = sub === 'show' ? await getAdminJob(ep, positionals[0]!) : undefined;
  if (values.json) return void process.stdout.write(`${JSON.stringify(progress ? { ...r, Progress: progress.Tasks } : r)}\n`);
  const rows = (r.Tasks as Array<Record<string, string>>) ?? [];
  if (sub === 'show' && rows.length === 0) throw new UsageError(`no job ${positionals[0]} in this account`);
  printTable(rows, ['JobId', 'Type', 'Method', 'Status', 'Target', 'CreateTime', 'UpdateTime', 'FailMessage']);
  if (sub === 'list') process.stdout.write(`${rows.length} of ${String(r.TotalCount)} tasks\n`);
  if (progress) {
    const nodeRows = progress.Tasks.flatMap((t) =>
      t.Nodes.map((n) => ({
        Target: t.Target, Node: n.NodeId, Driver: n.Driver, State: n.State, ExecutedAs: n.ExecutedAs, Matched: n.Matched, AppliedAt: n.AppliedAt, AckedSeq: n.AckedSeq, LastSeen: n.LastSeen, FailMessage: n.FailMessage,
      })),
    );
    process.stdout.write('\nPer-node progress:\n');
    // ExecutedAs is what the cache did (a Varnish ban is a delete even for invalidate); `--json` adds each node's Note.
    if (nodeRows.length) printTable(nodeRows, ['Target', 'Node', 'Driver', 'State', 'ExecutedAs', 'Matched', 'AppliedAt', 'AckedSeq', 'LastSeen', 'FailMessage']);
    else process.stdout.write('(no edge node serves these hosts)\n');
  }
}

async function quota(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: clientOptions });
  const zone = zoneOf(values);
  const r = await callApi(endpoint(values), 'teo', TEO, 'DescribeContentQuota', { ZoneId: zone });
  if (values.json) return void process.stdout.write(`${JSON.stringify(r)}\n`);
  const rows = [...((r.PurgeQuota as Array<Record<string, unknown>>) ?? []), ...((r.PrefetchQuota as Array<Record<string, unknown>>) ?? [])];
  printTable(rows, ['Type', 'Batch', 'Daily', 'DailyAvailable']);
}

export async function main(argv: string[]): Promise<number> {
  // `edgepurge tasks list | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'start':
        await serve(rest, true);
        return -1;
      case 'serve':
        await serve(rest, false);
        return -1;
      case 'edge':
        await edge(rest);
        return -1;
      case 'agent':
        return await agent(rest);
      case 'purge':
        await purge(rest);
        return 0;
      case 'prefetch':
        await prefetch(rest);
        return 0;
      case 'tasks':
        await tasks(rest);
        return 0;
      case 'quota':
        await quota(rest);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${HELP}\n`);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof RemoteError) {
      process.stderr.write(`error ${e.code}: ${e.message}\n  (RequestId ${e.requestId})\n`);
      return 1;
    }
    if (e instanceof UsageError || (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`usage error: ${e.message}\nrun "edgepurge help" for the commands\n`);
      return 2;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\nfix the file and start again\n`);
      return 3;
    }
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}${cause}\n  is the control plane running and reachable?\n`);
    return 3;
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  if (code >= 0) process.exitCode = code;
}
