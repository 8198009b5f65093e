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

/**
 * The control plane's base URL from what an operator pastes: the `start`/`serve` banner prints both
 * `http://127.0.0.1:8080` and `127.0.0.1:8080 (protocol http://)`, so a missing scheme means http:// and
 * a trailing slash is fine. Anything with a path, query or credentials is refused with the reason.
 */
export function normalizeEndpoint(given: string): string {
  const text = given.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  const url = URL.parse(withScheme);
  const example = 'like http://127.0.0.1:8080 or 127.0.0.1:8080';
  if (!url || !url.hostname) throw new Error(`the endpoint must be a URL ${example} (got "${given}")`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`the endpoint must be http:// or https:// (got "${given}")`);
  if (url.pathname !== '/' || url.search || url.hash) throw new Error(`the endpoint is the server's address alone, ${example}, without a path (got "${given}")`);
  if (url.username || url.password) throw new Error(`the endpoint carries no credentials: use --secret-id/--secret-key (got "${given}")`);
  return url.origin;
}

const basicAuth = (ep: Endpoint) => `Basic ${Buffer.from(`${ep.secretId}:${ep.secretKey}`).toString('base64')}`;

/** GET an admin route (HTTP Basic SecretId:SecretKey); undefined on 404. */
async function getAdmin<T>(ep: Endpoint, path: string): Promise<T | undefined> {
  const res = await fetch(new URL(path, ep.url), { headers: { Authorization: basicAuth(ep) } });
  const text = await res.text();
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`${ep.url}${path} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
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

export interface AdminTask {
  readonly Target: string;
  readonly Status: string;
  readonly FailType?: string;
  readonly FailMessage?: string;
  readonly Nodes: readonly AdminNode[];
}

/** GET /admin/v1/jobs/JOBID: a job with every task's per-node progress (HTTP Basic SecretId:SecretKey). */
export interface AdminJob {
  readonly JobId: string;
  readonly Tasks: readonly AdminTask[];
}

/** The job's per-node progress; undefined when the server does not know the job. */
export function getAdminJob(ep: Endpoint, jobId: string): Promise<AdminJob | undefined> {
  return getAdmin<AdminJob>(ep, `/admin/v1/jobs/${encodeURIComponent(jobId)}`);
}

/** One row of GET /admin/v1/nodes. */
export interface FleetNode {
  readonly NodeId: string;
  readonly Driver: string;
  readonly Hosts: readonly string[];
  readonly Connected: boolean;
  readonly AckedSeq: number;
  readonly LagEntries: number;
  readonly LagSeconds: number;
  readonly Lease: string;
  readonly LastSeen: string | null;
  readonly LastError: { readonly Time: string; readonly JobId: string; readonly Message: string } | null;
}

/** GET /admin/v1/nodes: the nodes serving the account's hosts. */
export async function getFleet(ep: Endpoint): Promise<{ LastSeq: number; Nodes: FleetNode[] }> {
  const r = await getAdmin<{ LastSeq: number; Nodes: FleetNode[] }>(ep, '/admin/v1/nodes');
  if (!r) throw new Error(`${ep.url} has no /admin/v1/nodes; is it an EdgePurge control plane of this version?`);
  return r;
}

/**
 * Reads GET /admin/v1/jobs/JOBID/events (server-sent events) and calls `onView` with every job view,
 * until `settled` (resolves with the final view) or `signal` aborts (rejects with its reason). A lost
 * connection is retried with backoff (0.25 s doubling to 5 s); `onRetry` says so. Undefined: no such job.
 */
export async function followJob(ep: Endpoint, jobId: string, opts: { signal: AbortSignal; onView: (job: AdminJob) => void; onRetry?: (error: unknown, inMs: number) => void }): Promise<AdminJob | undefined> {
  let backoff = 250;
  for (;;) {
    try {
      const res = await fetch(new URL(`/admin/v1/jobs/${encodeURIComponent(jobId)}/events`, ep.url), {
        headers: { Authorization: basicAuth(ep), Accept: 'text/event-stream' },
        signal: opts.signal,
      });
      if (res.status === 404) return undefined;
      if (res.status !== 200 || !res.body) {
        const error = new Error(`${ep.url}/admin/v1/jobs/${jobId}/events answered HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
        // A refusal (bad key) will not change by retrying; a server error or a proxy's 502 may.
        if (res.status < 500) throw Object.assign(error, { final: true });
        throw error;
      }
      let buffer = '';
      for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        // Events end with a blank line; comments (": keepalive") carry nothing.
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          const lines = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim() ?? 'message';
          const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
          if (!data) continue;
          const view = JSON.parse(data) as AdminJob;
          opts.onView(view);
          backoff = 250;
          if (event === 'settled') return view;
        }
      }
      throw new Error('the event stream ended before the job settled');
    } catch (e) {
      if (opts.signal.aborted) throw opts.signal.reason;
      if (e instanceof Error && 'final' in e) throw e;
      opts.onRetry?.(e, backoff);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoff);
        opts.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (opts.signal.aborted) throw opts.signal.reason;
      backoff = Math.min(5000, backoff * 2);
    }
  }
}
