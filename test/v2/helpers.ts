// Legacy v2 test clients: the real qcloudapi-sdk@0.2.1, and our own signer for requests the SDK
// cannot make (replays, chosen timestamps and nonces, raw or malformed parameters).
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import { hmacSign, hmacStringToSign, type HmacSignatureMethod } from '../../src/protocols/hmac-signature.ts';
import type { TaskType } from '../../src/purge/types.ts';
import type { TestServer } from '../helpers/control-plane.ts';

const require = createRequire(import.meta.url);

/** The slice of qcloudapi-sdk@0.2.1 used here (the package ships no types). */
interface QcloudApi {
  request(data: Record<string, unknown>, opts: Record<string, unknown>, cb: (err: Error | null, body: unknown) => void): void;
}
const Capi = require('qcloudapi-sdk') as new (defaults: Record<string, unknown>) => QcloudApi;

/** The legacy envelope (§1.4). */
export interface V2Body {
  code: number;
  message: string;
  codeDesc: string;
  data?: Record<string, any>;
}

export interface Account {
  readonly secretId: string;
  readonly secretKey: string;
}

export type CapiOptions = { method?: 'GET' | 'POST'; signatureMethod?: 'sha1' | 'sha256' };

/** Calls the server with qcloudapi-sdk exactly as an old script would, changing only the host. */
export function capi(server: TestServer, account: Account, data: Record<string, unknown>, o: CapiOptions = {}): Promise<V2Body> {
  const client = new Capi({ SecretId: account.secretId, SecretKey: account.secretKey, serviceType: 'cdn', protocol: 'http', host: server.endpoint });
  // qcloudapi reads host/protocol from the per-call options when they are given, so repeat them there.
  const opts = { host: server.endpoint, protocol: 'http', method: o.method ?? 'POST', signatureMethod: o.signatureMethod ?? 'sha1' };
  return new Promise((resolve, reject) => client.request(data, opts, (err, body) => (err ? reject(err) : resolve(body as V2Body))));
}

export interface RawOptions {
  method?: 'GET' | 'POST';
  signatureMethod?: HmacSignatureMethod;
  /** Unix seconds; defaults to the server clock passed in `nowMs`, else the wall clock. */
  timestamp?: number;
  nowMs?: number;
  nonce?: string;
  /** Sign with this key instead of the account's (a forged request). */
  signKey?: string;
  /** Drop a parameter after signing. */
  drop?: string;
}

export interface SignedRequest {
  readonly method: 'GET' | 'POST';
  readonly params: Record<string, string>;
}

/** Signs flat params as §1.3 says (every param, empty Region= included, Host with port, raw values). */
export function signV2(server: TestServer, account: Account, fields: Record<string, string>, o: RawOptions = {}): SignedRequest {
  const method = o.method ?? 'POST';
  const params: Record<string, string> = {
    Region: '',
    SecretId: account.secretId,
    Timestamp: String(o.timestamp ?? Math.floor((o.nowMs ?? Date.now()) / 1000)),
    Nonce: o.nonce ?? String(randomInt(1, 2 ** 47)),
    RequestClient: 'EdgePurgeTest',
    ...fields,
  };
  const sm = o.signatureMethod ?? 'HmacSHA1';
  if (sm !== 'HmacSHA1') params['SignatureMethod'] = sm;
  params['Signature'] = hmacSign(o.signKey ?? account.secretKey, hmacStringToSign(method, server.endpoint, '/v2/index.php', params, sm), sm);
  if (o.drop !== undefined) delete params[o.drop];
  return { method, params };
}

/** Sends a signed request (again, for a replay) and parses the envelope. */
export async function send(server: TestServer, r: SignedRequest): Promise<V2Body> {
  const encoded = new URLSearchParams(r.params).toString();
  const res =
    r.method === 'GET'
      ? await fetch(`${server.url}/v2/index.php?${encoded}`)
      : await fetch(`${server.url}/v2/index.php`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: encoded });
  return (await res.json()) as V2Body;
}

export const raw = (server: TestServer, account: Account, fields: Record<string, string>, o: RawOptions = {}): Promise<V2Body> =>
  send(server, signV2(server, account, fields, o));

/** `name.N` keys for a list (§1.1). */
export function flat(name: string, values: readonly string[]): Record<string, string> {
  return Object.fromEntries(values.map((v, i) => [`${name}.${i}`, v]));
}

/** What a refusal must leave alone: today's quota counters and the account's whole history. */
export async function snapshot(server: TestServer, appId: number, day?: string): Promise<{ quota: Partial<Record<TaskType, number>>; jobs: string[] }> {
  const d = day ?? new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
  const usage = await server.store.quotaUsage(appId, d);
  const quota: Partial<Record<TaskType, number>> = Object.fromEntries(usage);
  const { tasks } = await server.store.listTasks({ appId, offset: 0, limit: 10_000 });
  return { quota, jobs: [...new Set(tasks.map((t) => t.jobId))] };
}

/** Asserts a legacy refusal (§1.4): common `code`; with a module code, `(NNNN)` opens `message` and `codeDesc` is it. */
export function assertRefused(body: V2Body, code: number, module?: number, message?: RegExp): void {
  assert.equal(body.code, code, JSON.stringify(body));
  if (module !== undefined) {
    assert.equal(body.codeDesc, String(module), JSON.stringify(body));
    assert.ok(body.message.startsWith(`(${module})`), body.message);
  }
  if (message !== undefined) assert.match(body.message, message);
  assert.equal(body.data, undefined);
}
