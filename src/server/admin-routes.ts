// JSON admin endpoint: GET /admin/v1/jobs/JOBID — a job with every task's per-node progress (state,
// driver, and what each node's cache executed: executed-as, matched, when).
// Authenticated with HTTP Basic SecretId:SecretKey and scoped to that key's account (DESIGN invariant 7).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatIso } from '../actions/times.ts';
import type { FanoutHub } from '../fanout/fanout-hub.ts';
import type { Directory } from '../purge/directory.ts';
import { secretsEqual } from '../protocols/hmac-signature.ts';
import type { TaskStore } from '../store/task-store.ts';

/** `directory` is read per request: a reloaded configuration (SIGHUP) applies at once. */
export function adminRoutes(deps: { directory: () => Directory; store: TaskStore; hub: FanoutHub | undefined }) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (!path.startsWith('/admin/v1/')) return false;
    const send = (status: number, body: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    const m = /^\/admin\/v1\/jobs\/([a-z0-9]{1,64})$/.exec(path);
    if (req.method !== 'GET' || !m) {
      send(404, { error: 'GET /admin/v1/jobs/JOBID is the only admin endpoint' });
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
      const job = await deps.store.getJob(appId, m[1]!);
      if (!job) return send(404, { error: `no job ${m[1]} in this account` });
      const [tasks, reports] = await Promise.all([deps.store.jobTasks(appId, job.jobId), deps.store.jobNodeReports(appId, job.jobId)]);
      const reportsOf = Map.groupBy(reports, (r) => r.taskId);
      send(200, {
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
          Nodes: (deps.hub?.nodeViews(t, reportsOf.get(t.id)) ?? []).map((n) => ({
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
      });
    })().catch(() => send(500, { error: 'internal error' }));
    return true;
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
