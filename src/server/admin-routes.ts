// JSON admin endpoint, authenticated with HTTP Basic SecretId:SecretKey and scoped to that key's account
// (DESIGN invariant 7):
//   GET /admin/v1/jobs/JOBID          a job with every task's per-node progress
//   GET /admin/v1/jobs/JOBID/events   the same view as server-sent events, live until every task settled
//   GET /admin/v1/nodes               the edge nodes that serve the account's hosts (the fleet table)
//   GET /admin/v1/webhooks/deliveries?job=JOBID&limit=N   the webhook delivery log, newest first (docs/webhooks.md)
// Every route is documented in docs/operator-guide.md.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatIso } from '../actions/times.ts';
import type { FanoutHub } from '../fanout/fanout-hub.ts';
import type { Directory } from '../purge/directory.ts';
import { secretsEqual } from '../protocols/hmac-signature.ts';
import type { TaskStore } from '../store/task-store.ts';

export interface AdminDeps {
  /** Read per request: a reloaded configuration (SIGHUP) applies at once. */
  readonly directory: () => Directory;
  readonly store: TaskStore;
  readonly hub: FanoutHub | undefined;
}

/** The admin routes; `close()` ends the open event streams (the control plane's shutdown waits for none). */
export interface AdminRoutes {
  (req: IncomingMessage, res: ServerResponse): boolean;
  close(): void;
}

/** An event stream says it is alive this often (proxies drop idle connections), and re-reads the job. */
const KEEPALIVE_MS = 15_000;
/** At most one job snapshot per this long on a stream: a big fleet acks many times a second. */
const MIN_EVENT_GAP_MS = 200;

const ROUTES = 'GET /admin/v1/jobs/JOBID, GET /admin/v1/jobs/JOBID/events, GET /admin/v1/nodes, GET /admin/v1/webhooks/deliveries';

export function adminRoutes(deps: AdminDeps): AdminRoutes {
  const streams = new Set<() => void>();
  const handler = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (!path.startsWith('/admin/v1/')) return false;
    const send = (status: number, body: unknown) => res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(body));
    const job = /^\/admin\/v1\/jobs\/([a-z0-9]{1,64})(\/events)?$/.exec(path);
    const nodes = path === '/admin/v1/nodes';
    const hooks = path === '/admin/v1/webhooks/deliveries';
    if (req.method !== 'GET' || (!job && !nodes && !hooks)) {
      send(404, { error: `no such admin endpoint: ${ROUTES}` });
      return true;
    }
    const basic = parseBasicAuth(req.headers.authorization);
    const cred = basic && deps.directory().credential(basic.userId);
    // Compared even for an unknown SecretId, so the answer time does not tell which SecretIds exist.
    const keyMatches = secretsEqual(cred?.secretKey ?? '', basic?.password ?? '');
    if (!cred || !keyMatches) {
      res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Basic realm="edgepurge"' }).end(JSON.stringify({ error: 'SecretId:SecretKey required' }));
      return true;
    }
    const appId = cred.account.appId;
    void (async () => {
      if (nodes) return send(200, await fleetView(deps, appId));
      if (hooks) {
        const q = deliveriesQuery(req.url ?? '');
        if ('error' in q) return send(400, q);
        return send(200, { Deliveries: await webhookDeliveriesView(deps, appId, q) });
      }
      if (job![2]) {
        const end = await streamJobEvents(deps, appId, job![1]!, res);
        if (end && !res.writableEnded) {
          streams.add(end);
          res.on('close', () => streams.delete(end));
        }
        return;
      }
      const view = await jobView(deps, appId, job![1]!);
      if (!view) return send(404, { error: `no job ${job![1]} in this account` });
      send(200, view);
    })().catch(() => (res.headersSent ? res.destroy() : send(500, { error: 'internal error' })));
    return true;
  };
  return Object.assign(handler, {
    close: () => {
      for (const end of [...streams]) end();
    },
  });
}

/** A job as GET /admin/v1/jobs/JOBID answers it; undefined when the account has no such job. */
export async function jobView(deps: AdminDeps, appId: number, jobId: string) {
  const job = await deps.store.getJob(appId, jobId);
  if (!job) return undefined;
  const [tasks, reports] = await Promise.all([deps.store.jobTasks(appId, job.jobId), deps.store.jobNodeReports(appId, job.jobId)]);
  const views = await deps.hub?.jobViews(tasks, reports);
  return {
    JobId: job.jobId,
    Type: job.type,
    Method: job.method,
    ZoneId: job.zoneId,
    CreateTime: formatIso(job.createdAt),
    SubmittedBy: { SecretId: job.secretId, ClientIp: job.clientIp, Api: job.source },
    Tasks: tasks.map((t) => ({
      Target: t.target,
      Status: t.status,
      Seq: t.seq,
      UpdateTime: formatIso(t.updatedAt),
      ...(t.failType ? { FailType: t.failType, FailMessage: t.failMessage } : {}),
      Nodes: (views?.get(t.id) ?? []).map((n) => ({
        NodeId: n.nodeId,
        State: n.state,
        Driver: n.driver,
        AckedSeq: n.ackedSeq,
        // Milliseconds: leases are counted in them, and whole seconds cannot tell whether one ran out.
        LastSeen: n.seenAt === null ? null : new Date(n.seenAt).toISOString(),
        // What the node's cache executed, as it reported it; null when it has not reported (issue 8).
        ExecutedAs: n.report?.executedAs ?? null,
        Matched: n.report?.matched ?? null,
        AppliedAt: n.report ? new Date(n.report.appliedAt).toISOString() : null,
        ...(n.report?.note ? { Note: n.report.note } : {}),
        ...(n.failMessage ? { FailMessage: n.failMessage } : {}),
      })),
    })),
  };
}

/**
 * GET /admin/v1/jobs/JOBID/events (text/event-stream, one `data:` line of JSON per event):
 * `event: job` with the job view at once and whenever a task's status or a node's state on it changes,
 * then `event: settled` with the final view once no task is processing, and the stream ends. A comment
 * line keeps it alive every 15 s. Reconnecting is safe: the first event is always the whole job.
 * Exported for the web console, which authenticates its own way.
 */
export async function streamJobEvents(deps: AdminDeps, appId: number, jobId: string, res: ServerResponse): Promise<(() => void) | undefined> {
  const first = await jobView(deps, appId, jobId);
  if (!first) {
    res.writeHead(404, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify({ error: `no job ${jobId} in this account` }));
    return undefined;
  }
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
  res.socket?.setNoDelay(true);
  const taskIds = new Set((await deps.store.jobTasks(appId, jobId)).map((t) => t.id));
  let nodeIds = new Set<string>();
  let open = true;
  let lastSignature = '';
  let busy = false;
  let again = false;
  let lastAt = -Infinity;
  let gapTimer: NodeJS.Timeout | undefined;
  // LastSeen moves with every heartbeat ack: only a change in anything else is worth an event.
  const signature = (v: unknown) => JSON.stringify(v, (k, x: unknown) => (k === 'LastSeen' ? undefined : x));
  const emit = (view: NonNullable<typeof first>) => {
    const settled = view.Tasks.every((t) => t.Status !== 'processing');
    const sig = signature(view);
    if (sig !== lastSignature || settled) res.write(`event: ${settled ? 'settled' : 'job'}\ndata: ${JSON.stringify(view)}\n\n`);
    lastSignature = sig;
    lastAt = performance.now();
    nodeIds = new Set(view.Tasks.flatMap((t) => t.Nodes.map((n) => n.NodeId)));
    if (settled) end();
  };
  /** One snapshot at a time, at most one per MIN_EVENT_GAP_MS; a change meanwhile asks for one more. */
  const refresh = async (): Promise<void> => {
    if (!open) return;
    if (busy) return void (again = true);
    const wait = MIN_EVENT_GAP_MS - (performance.now() - lastAt);
    if (wait > 0) {
      gapTimer ??= setTimeout(() => {
        gapTimer = undefined;
        void refresh();
      }, wait);
      return;
    }
    busy = true;
    try {
      const view = await jobView(deps, appId, jobId);
      if (open && view) emit(view);
    } catch {
      end();
    } finally {
      busy = false;
    }
    if (again && open) {
      again = false;
      void refresh();
    }
  };
  const offSettled = deps.hub?.onSettled((updates) => {
    if (updates.some((u) => taskIds.has(u.taskId))) void refresh();
  });
  const offAck = deps.hub?.onAck((nodeId) => {
    if (nodeIds.has(nodeId)) void refresh();
  });
  const keepalive = setInterval(() => {
    res.write(': keepalive\n\n');
    void refresh();
  }, KEEPALIVE_MS);
  function end(): void {
    if (!open) return;
    open = false;
    clearInterval(keepalive);
    clearTimeout(gapTimer);
    offSettled?.();
    offAck?.();
    res.end();
  }
  res.on('close', end);
  emit(first);
  return end;
}

/**
 * GET /admin/v1/nodes: the nodes that serve at least one of the account's hosts, each with only those
 * of its hosts that belong to the account and only the account's own last error (DESIGN invariant 7:
 * a tenant learns neither another tenant's domains nor its failures). Node ids, drivers, lag and lease
 * describe the shared fleet and are shown to every tenant the node serves.
 */
export async function fleetView(deps: AdminDeps, appId: number) {
  const directory = deps.directory();
  const own = directory.config.accounts.find((a) => a.appId === appId)?.zones.flatMap((z) => z.domains.map((d) => d.host)) ?? [];
  const statuses = (await deps.hub?.nodeStatuses()) ?? [];
  const lastSeq = await deps.store.lastSeq();
  return {
    LastSeq: lastSeq,
    Nodes: statuses.flatMap((n) => {
      const hosts = own.filter((h) => !n.hosts || n.hosts.includes(h));
      if (hosts.length === 0) return [];
      const error = n.lastErrors.get(appId);
      return [
        {
          NodeId: n.nodeId,
          Driver: n.driver,
          Hosts: hosts,
          Connected: n.connected,
          AckedSeq: n.ackedSeq,
          LagEntries: n.lagEntries,
          LagSeconds: Math.round(n.lagMs / 100) / 10,
          Lease: n.lease,
          LastSeen: n.seenAt === null ? null : new Date(n.seenAt).toISOString(),
          LastError: error ? { Time: new Date(error.at).toISOString(), JobId: error.jobId, Message: error.message } : null,
        },
      ];
    }),
  };
}

/**
 * RFC 7617 §2: `Basic base64(user-id ":" password)`, the scheme name case-insensitive (RFC 7235 §2.1).
 * The user-id cannot contain a colon, the password may: split at the first colon only, so
 * `SecretId:SecretKey:anything` is the password `SecretKey:anything`, not SecretKey.
 */
export function parseBasicAuth(header: string | undefined): { userId: string; password: string } | undefined {
  const m = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : { userId: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** `job` and `limit` of GET /admin/v1/webhooks/deliveries, or what is wrong with them. */
function deliveriesQuery(url: string): { jobId?: string; limit: number } | { error: string } {
  const params = new URL(url, 'http://admin').searchParams;
  const job = params.get('job');
  const limit = params.get('limit');
  if (job !== null && !/^[a-z0-9]{1,64}$/.test(job)) return { error: '`job` must be a JobId (1-64 lower-case letters and digits)' };
  if (limit !== null && !/^(?:[1-9]\d{0,2}|1000)$/.test(limit)) return { error: '`limit` must be an integer from 1 to 1000' };
  return { ...(job !== null ? { jobId: job } : {}), limit: limit === null ? 50 : Number(limit) };
}

const isoOrNull = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The account's webhook deliveries, newest first, as the admin API and the console show them. */
export async function webhookDeliveriesView(deps: Pick<AdminDeps, 'store'>, appId: number, q: { jobId?: string; limit: number }) {
  const rows = (await deps.store.webhookDeliveries?.({ appId, ...(q.jobId !== undefined ? { jobId: q.jobId } : {}), limit: q.limit })) ?? [];
  return rows.map((d) => ({
    EventId: d.eventId,
    JobId: d.jobId,
    Url: d.url,
    Event: d.event,
    Status: d.status,
    Attempts: d.attempts,
    CreateTime: new Date(d.createdAt).toISOString(),
    NextAttemptTime: d.status === 'pending' ? new Date(d.nextAt).toISOString() : null,
    LastAttemptTime: isoOrNull(d.lastAttemptAt),
    LastStatus: d.lastStatus,
    LastError: d.lastError,
    DeliveredTime: isoOrNull(d.deliveredAt),
  }));
}
