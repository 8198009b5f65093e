// A signed API 3.0 client for the CLI: TC3-HMAC-SHA256 over POST JSON, as the official SDKs send it.
import { signTc3Request } from '../protocols/tc3/tc3-signature.ts';
import { systemClock } from '../shared/clock.ts';

export interface Endpoint {
  /** Base URL, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly secretId: string;
  readonly secretKey: string;
}

/** An API-level error answered by the control plane (Response.Error). */
export class RemoteError extends Error {
  readonly code: string;
  readonly requestId: string;
  constructor(code: string, message: string, requestId: string) {
    super(message);
    this.code = code;
    this.requestId = requestId;
    this.name = 'RemoteError';
  }
}

export async function callApi(ep: Endpoint, service: 'teo' | 'cdn', version: string, action: string, params: Record<string, unknown>, now = systemClock.now()): Promise<Record<string, unknown>> {
  const url = new URL(ep.url);
  const body = JSON.stringify(params);
  const headers = signTc3Request({
    secretId: ep.secretId,
    secretKey: ep.secretKey,
    host: url.host,
    service,
    action,
    version,
    timestamp: Math.floor(now / 1000),
    body,
    method: 'POST',
    contentType: 'application/json',
  });
  const res = await fetch(new URL('/', url), { method: 'POST', headers, body });
  const text = await res.text();
  let json: { Response?: Record<string, unknown> & { Error?: { Code: string; Message: string }; RequestId?: string } };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    throw new Error(`${ep.url} answered HTTP ${res.status} with a non-JSON body; is it an EdgePurge control plane?`);
  }
  const r = json.Response;
  if (!r) throw new Error(`${ep.url} answered without a Response envelope`);
  if (r.Error) throw new RemoteError(r.Error.Code, r.Error.Message, String(r.RequestId ?? ''));
  return r;
}

/** One node's progress on one task, as GET /admin/v1/jobs/JOBID reports it. */
export interface AdminNode {
  readonly NodeId: string;
  readonly State: string;
  /** `builtin`, `varnish`, `nginx`. */
  readonly Driver: string;
  readonly AckedSeq: number;
  readonly LastSeen: string | null;
  /** What the node's cache executed (`invalidate`, `delete`, `drop_all`); null until it reported. */
  readonly ExecutedAs: string | null;
  /** Objects the cache said it matched; null when it cannot tell or has not reported. */
  readonly Matched: number | null;
  readonly AppliedAt: string | null;
  readonly Note?: string;
  readonly FailMessage?: string;
}

/** GET /admin/v1/jobs/JOBID: a job with every task's per-node progress (HTTP Basic SecretId:SecretKey). */
export interface AdminJob {
  readonly JobId: string;
  readonly Tasks: ReadonlyArray<{ readonly Target: string; readonly Status: string; readonly Nodes: readonly AdminNode[] }>;
}

/** The job's per-node progress; undefined when the server does not know the job. */
export async function getAdminJob(ep: Endpoint, jobId: string): Promise<AdminJob | undefined> {
  const auth = Buffer.from(`${ep.secretId}:${ep.secretKey}`).toString('base64');
  const res = await fetch(new URL(`/admin/v1/jobs/${encodeURIComponent(jobId)}`, ep.url), { headers: { Authorization: `Basic ${auth}` } });
  const text = await res.text();
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`${ep.url}/admin/v1/jobs answered HTTP ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as AdminJob;
}
