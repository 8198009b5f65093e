// API request metrics (count and latency by api, action and code, labels bounded by construction) and
// the access log: one JSON line per request through the logger.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../shared/logger.ts';

/** The APIs a request can arrive on; `unknown` when it could not be told (an API 3.0 call of no known version). */
export type ApiName = 'teo' | 'cdn' | 'v2' | 'admin' | 'unknown';

/** What one request was, filled in as it is understood; `finish()` records it. */
export interface ApiRequestRecord {
  api: ApiName;
  /** As the client sent it (logged only after it proved to be a known action; see ApiMetrics). */
  action: string | undefined;
  /** The account, once the signature was verified. */
  appId: number | undefined;
  readonly requestId: string | undefined;
  /** process.hrtime.bigint() at arrival. */
  readonly startedAt: bigint;
}

export interface ApiMetricsOptions {
  readonly registry: Registry | undefined;
  readonly logger: Logger;
  /** Read per request (SIGHUP reload): whether to write the access log line. */
  readonly accessLog: () => boolean;
  /** The known action names of each API: anything else is labelled `unknown`, so a caller cannot grow the series. */
  readonly actions: Readonly<Partial<Record<ApiName, Iterable<string>>>>;
  /** The error codes a label may carry (the registry); anything else is `InternalError`. */
  readonly codes: Iterable<string>;
}

/** Seconds: an API answer takes from well under a millisecond (a refusal) to seconds (a history query under load). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class ApiMetrics {
  readonly #o: ApiMetricsOptions;
  readonly #actions = new Map<ApiName, ReadonlySet<string>>();
  readonly #codes: ReadonlySet<string>;
  readonly #requests: Counter<'api' | 'action' | 'code'> | undefined;
  readonly #latency: Histogram<'api' | 'action'> | undefined;
  /** Label children by key: the per-request cost is one Map lookup, not prom-client's label hashing. */
  readonly #requestChildren = new Map<string, Counter.Internal>();
  readonly #latencyChildren = new Map<string, Histogram.Internal<'api' | 'action'>>();

  constructor(options: ApiMetricsOptions) {
    this.#o = options;
    for (const [api, names] of Object.entries(options.actions) as Array<[ApiName, Iterable<string>]>) this.#actions.set(api, new Set(names));
    this.#codes = new Set(options.codes);
    const registers = options.registry ? [options.registry] : [];
    if (options.registry) {
      this.#requests = new Counter({ name: 'edgepurge_api_requests_total', help: 'API requests answered, by API, action and result code (Success or the error code).', labelNames: ['api', 'action', 'code'], registers });
      this.#latency = new Histogram({ name: 'edgepurge_api_request_duration_seconds', help: 'Time from a request\'s arrival to its answer, by API and action.', labelNames: ['api', 'action'], buckets: LATENCY_BUCKETS, registers });
    }
  }

  /** A record for a request that just arrived. */
  begin(api: ApiName, requestId?: string): ApiRequestRecord {
    return { api, action: undefined, appId: undefined, requestId, startedAt: process.hrtime.bigint() };
  }

  /** The action label of a name the client sent: a registry name, or `unknown`. */
  actionLabel(api: ApiName, action: string | undefined): string {
    return action !== undefined && this.#actions.get(api)?.has(action) ? action : 'unknown';
  }

  /** Records the answer: `code` is `Success` or the error code the client got. */
  finish(r: ApiRequestRecord, code: string): void {
    const seconds = Number(process.hrtime.bigint() - r.startedAt) / 1e9;
    const action = this.actionLabel(r.api, r.action);
    const codeLabel = code === 'Success' || this.#codes.has(code) ? code : 'InternalError';
    if (this.#requests && this.#latency) {
      const key = `${r.api} ${action}`;
      const ckey = `${key} ${codeLabel}`;
      let c = this.#requestChildren.get(ckey);
      if (!c) this.#requestChildren.set(ckey, (c = this.#requests.labels(r.api, action, codeLabel)));
      c.inc();
      let h = this.#latencyChildren.get(key);
      if (!h) this.#latencyChildren.set(key, (h = this.#latency.labels(r.api, action)));
      h.observe(seconds);
    }
    if (this.#o.accessLog()) {
      this.#o.logger.info('request', {
        api: r.api,
        action,
        account: r.appId ?? null,
        code: codeLabel,
        durationMs: Math.round(seconds * 1e6) / 1e3,
        requestId: r.requestId ?? null,
      });
    }
  }
}
