// The client commands: signed API 3.0 calls (purge, prefetch, tasks, quota) and the admin views
// (per-node progress, the fleet) of one control plane.
import { systemClock } from '../shared/clock.ts';
import { parseDuration, UsageError, type CommandSpec, type OptionSpec, type Values } from './args.ts';
import { callApi, getAdminJob, getFleet, normalizeEndpoint, type AdminJob, type Endpoint } from './client.ts';
import { waitForJob } from './follow.ts';
import { printTable } from './table.ts';

const TEO = '2022-09-01';

/** `edgepurge purge <kind>` and `tasks list --type <kind>` → EdgeOne purge type. */
const PURGE_KINDS: Readonly<Record<string, string>> = { url: 'purge_url', prefix: 'purge_prefix', host: 'purge_host', all: 'purge_all', tag: 'purge_cache_tag' };

const DEFAULT_ENDPOINT = 'http://127.0.0.1:8080';

const str = (v: Values, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

function endpoint(v: Values): Endpoint {
  const given = str(v, 'endpoint') ?? process.env.EDGEPURGE_ENDPOINT ?? DEFAULT_ENDPOINT;
  const secretId = str(v, 'secret-id') ?? process.env.TENCENTCLOUD_SECRET_ID;
  const secretKey = str(v, 'secret-key') ?? process.env.TENCENTCLOUD_SECRET_KEY;
  if (!secretId || !secretKey) throw new UsageError('credentials missing: pass --secret-id/--secret-key or set TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY');
  try {
    return { url: normalizeEndpoint(given), secretId, secretKey };
  } catch (e) {
    throw new UsageError(`--endpoint: ${(e as Error).message}`);
  }
}

const zoneOf = (v: Values) => str(v, 'zone') ?? process.env.EDGEPURGE_ZONE ?? '*';

const printJson = (x: unknown) => void process.stdout.write(`${JSON.stringify(x)}\n`);

/** --wait/--timeout as given: undefined when not waiting. */
function waitMs(v: Values): number | undefined {
  if (!v.wait) {
    if (v.timeout !== undefined) throw new UsageError('--timeout needs --wait');
    return undefined;
  }
  return parseDuration(str(v, 'timeout') ?? '10m', '--timeout');
}

/**
 * Sends a create action, prints the JobId and any refused targets (stderr), and with --wait follows the
 * job. Exit: 0 all accepted (and, waiting, all succeeded); 1 targets refused or a task failed or timed
 * out; 4 --wait's own timeout ran out.
 */
async function submit(v: Values, action: string, params: Record<string, unknown>): Promise<number> {
  const ep = endpoint(v);
  const timeoutMs = waitMs(v);
  const json = v.json === true;
  const r = await callApi(ep, 'teo', TEO, action, params);
  const refused = (r.FailedList as Array<{ Reason: string; Targets: string[] }> | null) ?? [];
  if (!json) process.stdout.write(`JobId ${String(r.JobId)}\n`);
  for (const f of refused) process.stderr.write(`refused (${f.Reason}): ${f.Targets.join(' ')}\n`);
  let code = refused.length ? 1 : 0;
  let job: AdminJob | undefined;
  if (timeoutMs !== undefined) {
    const waited = await waitForJob(ep, String(r.JobId), { timeoutMs, json, out: process.stdout, err: process.stderr });
    job = waited.job;
    if (waited.code !== 0) code = waited.code;
  }
  if (json) printJson(job ? { ...r, Job: job } : r);
  return code;
}

const CLIENT_OPTIONS = {
  endpoint: { type: 'string', arg: 'URL', help: `the control plane (env EDGEPURGE_ENDPOINT, default ${DEFAULT_ENDPOINT}); "127.0.0.1:8080" means http://` },
  'secret-id': { type: 'string', arg: 'ID', help: 'API SecretId (env TENCENTCLOUD_SECRET_ID)' },
  'secret-key': { type: 'string', arg: 'KEY', help: 'API SecretKey (env TENCENTCLOUD_SECRET_KEY)' },
  json: { type: 'boolean', help: 'print the JSON answer instead of text' },
} satisfies Record<string, OptionSpec>;

const ZONE: OptionSpec = { type: 'string', arg: 'ZONE', help: 'ZoneId (env EDGEPURGE_ZONE, default "*": the zone is found from each target\'s host)' };
const WAIT_OPTIONS = {
  wait: { type: 'boolean', help: 'follow the job until every task settles, with per-node progress; exit 0 all succeeded, 1 one failed or timed out' },
  timeout: { type: 'string', arg: 'DURATION', help: 'with --wait: give up after this long (30s, 5m; default 10m) and exit 4' },
} satisfies Record<string, OptionSpec>;
const ENCODE_URL: OptionSpec = { type: 'boolean', help: 'record the URLs percent-encoded, as a browser would send them (EncodeUrl)' };
const method = (dflt: string): OptionSpec => ({ type: 'string', arg: 'invalidate|delete', help: `invalidate: revalidate before serving again; delete: drop it (default ${dflt})` });

const EXIT_CODES = 'Exit: 0 accepted (with --wait: every task succeeded); 1 refused by the API, some targets refused (listed on stderr) or, with --wait, a task failed or timed out; 2 usage error; 3 server unreachable; 4 --wait gave up (--timeout).';

function purgeCommand(kind: string, args: string, summary: string, extra: Record<string, OptionSpec>): CommandSpec {
  const type = PURGE_KINDS[kind]!;
  return {
    name: `purge ${kind}`,
    args,
    summary,
    details: EXIT_CODES,
    options: { ...CLIENT_OPTIONS, zone: ZONE, ...extra, ...WAIT_OPTIONS },
    run: (v, positionals) => {
      if (type !== 'purge_all' && positionals.length === 0) throw new UsageError(`purge ${kind} needs at least one target`);
      const params: Record<string, unknown> = { ZoneId: zoneOf(v), Type: type };
      if (type !== 'purge_all') params.Targets = positionals;
      if (v.method !== undefined) params.Method = v.method;
      if (v['encode-url']) params.EncodeUrl = true;
      const domains = str(v, 'domains');
      if (domains) params.CacheTag = { Domains: domains.split(',').map((d) => d.trim()).filter(Boolean) };
      return submit(v, 'CreatePurgeTask', params);
    },
  };
}

async function tasks(sub: 'list' | 'show', v: Values, positionals: string[]): Promise<number> {
  const ep = endpoint(v);
  const filters: Array<Record<string, unknown>> = [];
  const params: Record<string, unknown> = {};
  if (zoneOf(v) !== '*') params.ZoneId = zoneOf(v);
  const jobId = positionals[0];
  if (sub === 'show') {
    if (!jobId) throw new UsageError('tasks show needs a JOBID');
    filters.push({ Name: 'job-id', Values: [jobId] });
    params.Limit = 1000;
  } else {
    const now = systemClock.now();
    const since = parseDuration(str(v, 'since') ?? '24h', '--since');
    if (since > 7 * 8.64e7) throw new UsageError('--since is limited to 7d (the API refuses longer ranges)');
    params.StartTime = new Date(now - since).toISOString();
    params.EndTime = new Date(now).toISOString();
    const limit = str(v, 'limit') ?? '50';
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000) throw new UsageError(`--limit takes a number from 1 to 1000 (got "${limit}")`);
    params.Limit = Number(limit);
    const [status, domain, target, type] = [str(v, 'status'), str(v, 'domain'), str(v, 'target'), str(v, 'type')];
    if (status) filters.push({ Name: 'statuses', Values: status.split(',') });
    if (domain) filters.push({ Name: 'domains', Values: domain.split(',') });
    if (target) filters.push({ Name: 'target', Values: [target], ...(v.fuzzy ? { Fuzzy: true } : {}) });
    // The same words as `purge <kind>`: `--type tag` means purge_cache_tag.
    if (type) filters.push({ Name: 'type', Values: [type.startsWith('purge_') ? type : (PURGE_KINDS[type] ?? `purge_${type}`)] });
  }
  const timeoutMs = sub === 'show' ? waitMs(v) : undefined;
  let code = 0;
  if (timeoutMs !== undefined) code = (await waitForJob(ep, jobId!, { timeoutMs, json: v.json === true, out: process.stdout, err: process.stderr })).code;
  if (filters.length) params.Filters = filters;
  const action = v.prefetch ? 'DescribePrefetchTasks' : 'DescribePurgeTasks';
  let r = await callApi(ep, 'teo', TEO, action, params);
  if (sub === 'show' && !v.prefetch && (r.TotalCount as number) === 0) r = await callApi(ep, 'teo', TEO, 'DescribePrefetchTasks', params);
  // DESIGN invariant 3: a job's per-node progress is shown (the admin endpoint of the same server).
  const progress = sub === 'show' ? await getAdminJob(ep, jobId!) : undefined;
  if (v.json) {
    printJson(progress ? { ...r, Progress: progress.Tasks } : r);
    return code;
  }
  const rows = (r.Tasks as Array<Record<string, string>>) ?? [];
  if (sub === 'show' && rows.length === 0) throw new UsageError(`no job ${jobId} in this account`);
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
  return code;
}

async function nodes(v: Values): Promise<number> {
  const fleet = await getFleet(endpoint(v));
  if (v.json) return printJson(fleet), 0;
  const rows = fleet.Nodes.map((n) => ({
    Node: n.NodeId,
    Driver: n.Driver,
    Connected: n.Connected ? 'yes' : 'no',
    AckedSeq: n.AckedSeq,
    Lag: n.LagEntries,
    LagSeconds: n.LagSeconds,
    Lease: n.Lease,
    LastSeen: n.LastSeen ?? 'never',
    LastError: n.LastError ? `${n.LastError.Time} job ${n.LastError.JobId}: ${n.LastError.Message}` : '',
  }));
  if (rows.length === 0) process.stdout.write('no edge node serves this account\'s hosts\n');
  else printTable(rows, ['Node', 'Driver', 'Connected', 'AckedSeq', 'Lag', 'LagSeconds', 'Lease', 'LastSeen', 'LastError']);
  process.stdout.write(`log end: seq ${fleet.LastSeq}\n`);
  return 0;
}

export const CLIENT_COMMANDS: readonly CommandSpec[] = [
  purgeCommand('url', 'URL...', 'Purge URLs (purge_url).', { method: method('delete'), 'encode-url': ENCODE_URL }),
  purgeCommand('prefix', 'URL...', 'Purge everything under URL prefixes (purge_prefix).', { method: method('invalidate'), 'encode-url': ENCODE_URL }),
  purgeCommand('host', 'HOST...', 'Purge whole hosts (purge_host).', { method: method('invalidate') }),
  purgeCommand('all', '', 'Purge every domain of a zone (purge_all; needs --zone).', { method: method('invalidate') }),
  purgeCommand('tag', 'TAG...', 'Purge by cache tag (purge_cache_tag).', {
    method: method('delete'),
    domains: { type: 'string', arg: 'a.com,b.com', help: 'the domains the tags apply to (CacheTag.Domains; default: the zone\'s)' },
  }),
  {
    name: 'prefetch',
    args: 'URL...',
    summary: 'Warm the edges (prefetch_url).',
    details: `Each node serving the URL's host fetches it into its cache. ${EXIT_CODES}`,
    options: { ...CLIENT_OPTIONS, zone: ZONE, 'encode-url': ENCODE_URL, ...WAIT_OPTIONS },
    run: (v, positionals) => {
      if (positionals.length === 0) throw new UsageError('prefetch needs at least one URL');
      return submit(v, 'CreatePrefetchTask', { ZoneId: zoneOf(v), Targets: positionals, ...(v['encode-url'] ? { EncodeUrl: true } : {}) });
    },
  },
  {
    name: 'tasks list',
    args: '',
    summary: 'Purge (or prefetch) history, newest first.',
    options: {
      ...CLIENT_OPTIONS,
      zone: ZONE,
      since: { type: 'string', arg: 'DURATION', help: 'how far back (30m, 24h, 7d; default 24h, at most 7d)' },
      status: { type: 'string', arg: 'S[,S]', help: 'processing, success, failed, timeout' },
      domain: { type: 'string', arg: 'D[,D]', help: 'only tasks on these domains' },
      target: { type: 'string', arg: 'T', help: 'only this target (exact, or a substring with --fuzzy)' },
      fuzzy: { type: 'boolean', help: 'match --target as a case-insensitive substring' },
      type: { type: 'string', arg: 'TYPE', help: 'url, prefix, host, all, tag (or purge_url, …)' },
      limit: { type: 'string', arg: 'N', help: 'at most N tasks, 1-1000 (default 50)' },
      prefetch: { type: 'boolean', help: 'list prefetch tasks instead of purges' },
    },
    run: (v, p) => tasks('list', v, p),
  },
  {
    name: 'tasks show',
    args: 'JOBID',
    summary: "A job's tasks and each edge node's progress on them.",
    details: 'With --wait, follows the job live first (exit codes as for purge --wait).',
    options: { ...CLIENT_OPTIONS, zone: ZONE, prefetch: { type: 'boolean', help: 'look the job up among prefetches first' }, ...WAIT_OPTIONS },
    run: (v, p) => tasks('show', v, p),
  },
  {
    name: 'quota',
    args: '',
    summary: 'Live quota counters per task type for today.',
    options: { ...CLIENT_OPTIONS, zone: ZONE },
    run: async (v) => {
      const r = await callApi(endpoint(v), 'teo', TEO, 'DescribeContentQuota', { ZoneId: zoneOf(v) });
      if (v.json) return printJson(r), 0;
      const rows = [...((r.PurgeQuota as Array<Record<string, unknown>>) ?? []), ...((r.PrefetchQuota as Array<Record<string, unknown>>) ?? [])];
      printTable(rows, ['Type', 'Batch', 'Daily', 'DailyAvailable']);
      return 0;
    },
  },
  {
    name: 'nodes',
    args: '',
    summary: "The edge fleet serving this account's hosts.",
    details: 'Each node: driver, connected or not, applied seq, lag (entries, seconds), lease, last error of one of this account\'s tasks. Lease: held (may serve hits), lapsed (serves no hits: counts as fenced), never (never acked), unfenced (nginx: never counted as fenced).',
    options: CLIENT_OPTIONS,
    run: (v) => nodes(v),
  },
];
