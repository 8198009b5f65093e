// The control plane's observability, wired: the Prometheus registry and its collectors, the store
// observed for them, /metrics /healthz /readyz, API request metrics and the access log (issue 10).
// ControlPlane hooks it in at a few points: the store it hands out, route(), begin()/finish() per request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { API3_ACTIONS, CDN_VERSION, TEO_VERSION } from '../actions/registry.ts';
import { V2_ACTIONS } from '../actions/v2/registry.ts';
import type { Config, NodeConfig } from '../config/schema.ts';
import type { FanoutHub } from '../fanout/fanout-hub.ts';
import { ApiMetrics, type ApiName, type ApiRequestRecord } from '../observability/api-metrics.ts';
import { ControlPlaneMetrics } from '../observability/control-plane-metrics.ts';
import { WebhookMetrics } from '../observability/webhook-metrics.ts';
import { operatorRoutes, type ReadyCheck } from '../observability/endpoints.ts';
import { quotaDay, quotaFor } from '../purge/quotas.ts';
import { TASK_TYPES } from '../purge/types.ts';
import type { Clock } from '../shared/clock.ts';
import { ApiError, ERRORS } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { instrumentStore } from '../store/instrumented-store.ts';
import type { TaskStore } from '../store/task-store.ts';
import { parseBasicAuth } from './admin-routes.ts';

export interface ControlPlaneObservabilityOptions {
  readonly config: Readonly<Config>;
  readonly store: TaskStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The hub (created after this object, which hands it its store). */
  readonly hub: () => FanoutHub;
  /** True once the control plane is shutting down: it is no longer ready. */
  readonly closing: () => boolean;
}

/** The API of an API 3.0 version; `unknown` for any other. */
export const api3Name = (version: string | undefined): ApiName => (version === TEO_VERSION ? 'teo' : version === CDN_VERSION ? 'cdn' : 'unknown');

/** The code a client got for a thrown error (the envelope renders anything else as InternalError). */
export const errorCode = (e: unknown): string => (e instanceof ApiError ? e.code : 'InternalError');

/** A readiness check that has not answered in this long has failed (a wedged store must not hang /readyz). */
const READY_TIMEOUT_MS = 2000;

export class ControlPlaneObservability {
  #config: Readonly<Config>;
  #nodes = new Map<string, NodeConfig>();
  readonly #o: ControlPlaneObservabilityOptions;
  readonly #raw: TaskStore;
  /** The store everyone in the control plane uses: observed when metrics are on. */
  readonly store: TaskStore;
  readonly api: ApiMetrics;
  readonly #registry: Registry | undefined;
  readonly #metrics: ControlPlaneMetrics | undefined;
  readonly route: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Webhook delivery metrics; undefined when metrics are off or the store has no outbox. */
  readonly webhooks: WebhookMetrics | undefined;

  constructor(options: ControlPlaneObservabilityOptions) {
    this.#o = options;
    this.#config = options.config;
    this.#raw = options.store;
    this.#indexNodes();
    const registry = options.config.metrics.enabled ? new Registry() : undefined;
    this.#registry = registry;
    if (registry) {
      collectDefaultMetrics({ register: registry });
      const metrics = new ControlPlaneMetrics({
        registry,
        clock: options.clock,
        nodes: () => options.hub().nodeGauges(),
        leading: () => options.hub().leading,
        accounts: () => this.#config.accounts.map((a) => ({ appId: a.appId, daily: Object.fromEntries(TASK_TYPES.map((t) => [t, quotaFor(a.quotas, t).daily])) })),
        perAccount: () => this.#config.metrics.token !== undefined,
        today: () => this.#today(),
        serves: (nodeId, hosts) => {
          const served = this.#nodes.get(nodeId)?.hosts;
          return served === undefined || hosts.some((h) => served.includes(h));
        },
      });
      this.#metrics = metrics;
      this.store = instrumentStore(options.store, metrics);
      const outbox = options.store;
      this.webhooks = outbox.webhookOutboxDepth ? new WebhookMetrics(registry, () => outbox.webhookOutboxDepth!()) : undefined;
    } else {
      this.store = options.store;
      this.webhooks = undefined;
    }
    this.api = new ApiMetrics({
      registry,
      logger: options.logger,
      accessLog: () => this.#config.server.accessLog,
      actions: {
        teo: API3_ACTIONS.get(TEO_VERSION)?.keys() ?? [],
        cdn: API3_ACTIONS.get(CDN_VERSION)?.keys() ?? [],
        v2: V2_ACTIONS.keys(),
        admin: ['GetJob'],
      },
      codes: Object.keys(ERRORS),
    });
    this.route = operatorRoutes({
      ...(registry ? { registry } : {}),
      token: () => this.#config.metrics.token,
      ready: () => this.#ready(),
    });
  }

  /** After the hub loaded node progress: seeds what the metrics need from the store, once. */
  async start(): Promise<void> {
    const metrics = this.#metrics;
    if (!metrics) return;
    const hub = this.#o.hub();
    hub.onSettled((tasks, at) => metrics.tasksSettled(tasks, at));
    const nodes = hub.nodeGauges();
    for (const n of nodes) metrics.seedNode(n.nodeId, n.ackedSeq);
    // Entries some node has still to apply (bounded by the metrics' window): their accept times give lag in seconds.
    const last = await this.#raw.lastSeq();
    const behind = Math.max(last - 65_536, Math.min(last, ...nodes.map((n) => n.ackedSeq)));
    const entries: Array<{ seq: number; createdAt: number; hosts: readonly string[] }> = [];
    for (let after = behind; after < last; ) {
      const page = await this.#raw.readLog(after, 1000);
      if (page.length === 0) break;
      entries.push(...page.map((e) => ({ seq: e.seq, createdAt: e.createdAt, hosts: e.hosts })));
      after = page[page.length - 1]!.seq;
    }
    metrics.seedLog(last, entries);
    await this.#seedQuotas();
  }

  /** A reloaded configuration (SIGHUP): accounts, nodes, token and access log apply to the next scrape or request. */
  reconfigure(config: Readonly<Config>): void {
    this.#config = config;
    this.#indexNodes();
    this.#seedQuotas().catch((e: unknown) => this.#o.logger.warn('could not read quota usage for the metrics', { error: e }));
  }

  /** A request to the admin endpoint, recorded when its answer has gone out. */
  observeAdmin(req: IncomingMessage, res: ServerResponse): void {
    const r = this.api.begin('admin');
    r.action = /^\/admin\/v1\/jobs\/[^/]+$/.test((req.url ?? '').split('?', 1)[0] ?? '') && req.method === 'GET' ? 'GetJob' : undefined;
    res.once('finish', () => {
      const code = res.statusCode === 200 ? 'Success' : res.statusCode === 401 ? 'AuthFailure.SignatureFailure' : res.statusCode === 404 ? 'ResourceNotFound' : res.statusCode === 400 ? 'InvalidParameter' : 'InternalError';
      // The account, once the answer shows its key was good.
      if (res.statusCode !== 401) {
        const cred = parseBasicAuth(req.headers.authorization);
        r.appId = cred ? this.#config.accounts.find((a) => a.credentials.some((c) => c.secretId === cred.userId))?.appId : undefined;
      }
      this.api.finish(r, code);
    });
  }

  /** Starts an API 3.0 or legacy request's record. */
  begin(api: ApiName, requestId?: string): ApiRequestRecord {
    return this.api.begin(api, requestId);
  }

  #today(): string {
    return quotaDay(this.#o.clock.now(), this.#config.server.timezone);
  }

  #indexNodes(): void {
    this.#nodes = new Map(this.#config.nodes.map((n) => [n.id, n]));
  }

  /** One row per configured account (at start, and for accounts a reload added). */
  async #seedQuotas(): Promise<void> {
    const metrics = this.#metrics;
    if (!metrics) return;
    const day = this.#today();
    for (const a of this.#config.accounts) metrics.seedQuota(a.appId, day, await this.#raw.quotaUsage(a.appId, day));
  }

  async #ready(): Promise<ReadyCheck[]> {
    const check = async (name: string, probe: () => Promise<string | undefined>): Promise<ReadyCheck> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`no answer within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS)));
      try {
        return { name, problem: await Promise.race([probe(), late]) };
      } catch (e) {
        return { name, problem: e instanceof Error ? e.message : String(e) };
      } finally {
        clearTimeout(timer);
      }
    };
    const store = this.#raw;
    return [
      { name: 'accepting requests', problem: this.#o.closing() ? 'shutting down' : undefined },
      await check('store reachable', async () => {
        await store.lastSeq();
        return undefined;
      }),
      await check('migrations applied', async () => {
        if (!store.schemaVersion) return undefined;
        const v = await store.schemaVersion();
        return v.applied === v.expected ? undefined : `schema version ${v.applied}, this build needs ${v.expected}`;
      }),
    ];
  }
}
