// Shared pieces of the API 3.0 integration tests: configs, raw signed calls with our own signer, and
// a snapshot of what an account has written (history + quota) to prove a refusal wrote nothing.
import assert from 'node:assert/strict';
import type { ConfigInput } from '../../src/config/schema.ts';
import { signTc3Request } from '../../src/protocols/tc3/tc3-signature.ts';
import type { Clock } from '../../src/shared/clock.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { baseConfig, type TestServer } from '../helpers/control-plane.ts';

/** A JobId / TaskId: short lowercase alphanumerics (EdgeOne) or digits (CDN, legacy task_id). */
export const JOB_ID = /^[0-9a-z]{12,24}$/;

export const TEO = '2022-09-01';
export const CDN = '2018-06-06';

type AccountInput = NonNullable<ConfigInput['accounts']>[number];

/** baseConfig with every account adjusted by `patch` (rate limits off unless the patch says otherwise). */
export function config(patch: (a: AccountInput, i: number) => Partial<AccountInput> = () => ({}), extra: Partial<ConfigInput> = {}): ConfigInput {
  const base = baseConfig();
  return {
    ...base,
    ...extra,
    accounts: (base.accounts ?? []).map((a, i) => ({ ...a, rateLimit: false as const, ...patch(a, i) })),
  };
}

export interface Caller {
  readonly secretId: string;
  readonly secretKey: string;
}

export interface RawCall {
  readonly action: string;
  readonly version: string;
  /** Object bodies are JSON-encoded; strings and buffers are sent as they are. */
  readonly body?: string | Buffer | Record<string, unknown>;
  readonly contentType?: string;
  /** Unix seconds to sign with; default: the clock's now. */
  readonly timestamp?: number;
  /** The host to sign; default the server's host:port. The Host header sent is always the server's. */
  readonly host?: string;
  readonly service?: string;
  readonly method?: 'POST' | 'GET';
  readonly query?: string;
  /** Headers to add or override after signing (forgeries). */
  readonly headers?: Record<string, string>;
}

export interface Answer {
  readonly status: number;
  readonly contentType: string | null;
  readonly response: Record<string, unknown> & { Error?: { Code: string; Message: string }; RequestId: string };
}

/** A TC3-signed call made with our own signer (src/protocols/tc3/tc3-signature.ts). */
export async function rawCall(s: TestServer, who: Caller, c: RawCall, clock: Clock = systemClock): Promise<Answer> {
  const body = c.body === undefined ? '{}' : typeof c.body === 'string' || Buffer.isBuffer(c.body) ? c.body : JSON.stringify(c.body);
  const method = c.method ?? 'POST';
  const headers = signTc3Request({
    secretId: who.secretId,
    secretKey: who.secretKey,
    host: c.host ?? s.endpoint,
    service: c.service ?? (c.version === CDN ? 'cdn' : 'teo'),
    action: c.action,
    version: c.version,
    timestamp: c.timestamp ?? Math.floor(clock.now() / 1000),
    body: method === 'GET' ? '' : body,
    method,
    ...(c.query !== undefined ? { query: c.query } : {}),
    contentType: c.contentType ?? (method === 'GET' ? 'application/x-www-form-urlencoded' : 'application/json'),
  });
  // The Host header is the URL's (fetch sets it); a different signed host is a forgery.
  delete headers.Host;
  const res = await fetch(`${s.url}/${c.query ? `?${c.query}` : ''}`, {
    method,
    headers: { ...headers, ...c.headers },
    ...(method === 'GET' ? {} : { body }),
  });
  return parseAnswer(res);
}

export async function parseAnswer(res: Response): Promise<Answer> {
  const text = await res.text();
  const json = JSON.parse(text) as { Response: Answer['response'] };
  return { status: res.status, contentType: res.headers.get('content-type'), response: json.Response };
}

/** Asserts the §2.6 error envelope: HTTP 200, exactly application/json, Error.Code, RequestId. */
export function assertError(a: Answer, code: string, message?: RegExp): void {
  assert.equal(a.status, 200);
  assert.equal(a.contentType, 'application/json');
  assert.equal(a.response.Error?.Code, code, `expected ${code}, got ${JSON.stringify(a.response)}`);
  if (message) assert.match(a.response.Error.Message, message);
  assert.match(a.response.RequestId, /^[0-9a-f-]{36}$/);
}

export function assertOk(a: Answer): Answer['response'] {
  assert.equal(a.status, 200);
  assert.equal(a.contentType, 'application/json');
  assert.equal(a.response.Error, undefined, `unexpected error ${JSON.stringify(a.response.Error)}`);
  assert.match(a.response.RequestId, /^[0-9a-f-]{36}$/);
  return a.response;
}

/** Everything an account has written: every task and today's quota counters. */
export async function snapshot(s: TestServer, appId: number): Promise<unknown> {
  const { total, tasks } = await s.store.listTasks({ appId, offset: 0, limit: 100_000 });
  const usage = await s.controlPlane.purge.usage(s.controlPlane.directory.config.accounts.find((a) => a.appId === appId)!);
  return { total, tasks: tasks.map((t) => [t.jobId, t.target, t.status]), usage: [...usage].sort() };
}

/** EdgeOne time range around `ms` (±`spanMs`). */
export const around = (ms: number, spanMs = 3_600_000) => ({
  StartTime: new Date(ms - spanMs).toISOString(),
  EndTime: new Date(ms + spanMs).toISOString(),
});

/** `YYYY-MM-DD HH:mm:ss` in a zone given in minutes east of UTC (CDN style). */
export const cdnTime = (ms: number, offsetMinutes = 480): string =>
  new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 19).replace('T', ' ');
