// The configuration schema (edgepurge.yaml): server, store, accounts with credentials, quotas,
// zones and domains, and edge nodes. Unknown keys are refused (strict objects).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { TASK_TYPES, WEBHOOK_EVENTS } from '../purge/types.ts';
import { DEFAULT_CONNECTION_LIMITS as CONN } from '../shared/connection-limits.ts';

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'must be "host:port"')
  .refine((s) => Number(/:(\d+)$/.exec(s)?.[1] ?? 0) <= 65535, 'the port must be 0-65535');

const hostname = z
  .string()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'must be a plain host name (no scheme, port or wildcard)');

const httpOrigin = z.url({ protocol: /^https?$/ }).refine((u) => new URL(u).pathname === '/' && !new URL(u).search, 'must be "http(s)://host[:port]" without a path');

const quota = z.strictObject({
  batch: z.int().positive(),
  daily: z.int().positive(),
});

const rateLimit = z.union([
  z.literal(false),
  z.strictObject({
    perSecond: z.number().positive().default(20),
    burst: z.int().positive().default(40),
  }),
]);

const domain = z.strictObject({
  host: hostname,
  origin: httpOrigin,
});

const zone = z.strictObject({
  zoneId: z.string().regex(/^zone-[a-z0-9]{1,40}$/, 'must look like "zone-abc123"'),
  name: hostname,
  domains: z.array(domain).default([]),
});

const httpUrl = z.url({ protocol: /^https?$/ });

/**
 * A completion webhook (issue 10, docs/webhooks.md). The secret is given inline or as a file read at
 * load (and again on SIGHUP), so it need not sit in the YAML; either way the result carries `secret`.
 */
const webhook = z
  .strictObject({
    url: httpUrl,
    secret: z.string().min(16, 'must be at least 16 characters').optional(),
    secretFile: z.string().min(1).optional(),
    events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).default([...WEBHOOK_EVENTS]),
  })
  .transform((w, ctx) => {
    if ((w.secret === undefined) === (w.secretFile === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of "secret" and "secretFile"' });
      return z.NEVER;
    }
    let secret = w.secret ?? '';
    if (w.secretFile !== undefined) {
      try {
        secret = readFileSync(w.secretFile, 'utf8').trim();
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['secretFile'], message: `cannot read it: ${(e as Error).message}` });
        return z.NEVER;
      }
      if (secret.length < 16) {
        ctx.addIssue({ code: 'custom', path: ['secretFile'], message: 'the secret in it must be at least 16 characters' });
        return z.NEVER;
      }
    }
    return { url: w.url, secret, events: w.events };
  });

const account = z.strictObject({
  appId: z.int().positive(),
  name: z.string().min(1),
  projectId: z.int().nonnegative().default(0),
  credentials: z
    .array(z.strictObject({ secretId: z.string().regex(/^[A-Za-z0-9]{8,128}$/, 'must be 8-128 letters/digits'), secretKey: z.string().min(16) }))
    .min(1),
  quotas: z.partialRecord(z.enum(TASK_TYPES), quota).default({}),
  rateLimit: rateLimit.default({ perSecond: 20, burst: 40 }),
  zones: z.array(zone).default([]),
  /** Completion webhooks: signed POSTs when a job of this account settles (docs/webhooks.md). */
  webhooks: z.array(webhook).default([]),
});

/** Connection admission for an HTTP server (src/shared/connection-limits.ts); defaults suit one busy host. */
const connections = z
  .strictObject({
    perAddress: z.int().positive().default(CONN.perAddress),
    total: z.int().positive().default(CONN.total),
    firstByteTimeoutMs: z.int().positive().default(CONN.firstByteTimeoutMs),
  })
  .prefault({});

/** A Varnish running the shipped edgepurge.vcl (`edgepurge agent vcl` prints it). */
const varnishDriver = z.strictObject({
  type: z.literal('varnish'),
  /** Varnish's HTTP listener (-a), e.g. http://127.0.0.1:6081. */
  url: httpUrl,
  /** Varnish's admin listener (-T), host:port. */
  admin: hostPort,
  /** The secret file varnishd was started with (-S). */
  secretFile: z.string().min(1),
  timeoutMs: z.int().positive().optional(),
});

/** An nginx proxy cache with the shipped snippet (`edgepurge agent nginx-conf` prints it). */
const nginxDriver = z.strictObject({
  type: z.literal('nginx'),
  /** Where nginx serves cached traffic (prefetches go through it). */
  url: httpUrl,
  /** The snippet's purge server. */
  purgeUrl: httpUrl,
  /** proxy_cache_path's directory; the agent reads it and deletes files in it. */
  cacheDir: z.string().min(1),
  levels: z.string().regex(/^[12](:[12]){0,2}$/, 'must be proxy_cache_path levels like "1:2"').default('1:2'),
  /** The purge secret, when the snippet was generated with one. */
  secret: z.string().min(16).optional(),
  /** `revalidate`: invalidate expires the cached files so nginx revalidates; `delete`: removes them. */
  invalidate: z.enum(['revalidate', 'delete']).default('revalidate'),
  timeoutMs: z.int().positive().optional(),
});

const controlPlaneUrl = z.url({ protocol: /^https?$/ });

const node = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  /** The built-in edge's listen address; absent for a node whose cache is driven by `edgepurge agent`. */
  listen: hostPort.optional(),
  /** The cache `edgepurge agent` purges on this node; absent for the built-in edge. */
  driver: z.discriminatedUnion('type', [varnishDriver, nginxDriver]).optional(),
  /** Where `edgepurge agent` keeps the seq it applied (default ./data/agent-ID.seq). */
  stateFile: z.string().min(1).optional(),
  token: z.string().min(16),
  /**
   * Where the node finds the control plane; defaults to http://server.listen. A list: replicas on one
   * store, the node streams from one and fails over to the others (README "Scale-out").
   */
  controlPlane: z.union([controlPlaneUrl, z.array(controlPlaneUrl).min(1).max(64)]).optional(),
  /** Hosts this node serves; all configured domains when absent. */
  hosts: z.array(hostname).optional(),
  /** Bytes of memory for cached objects. */
  cacheBytes: z.int().positive().default(256 * 1024 * 1024),
  connections,
  /**
   * Where this node's process (`edgepurge edge` or `agent`) serves /metrics, /healthz and /readyz: a
   * listener of its own, because the edge proxies every path of its `listen` address to the origin.
   */
  metrics: z.strictObject({ listen: hostPort }).optional(),
});

const store = z.discriminatedUnion('driver', [
  z.strictObject({ driver: z.literal('sqlite'), path: z.string().min(1).default('./data/edgepurge.db') }),
  z.strictObject({
    driver: z.literal('postgres'),
    /** Several replicas share one database (README "Scale-out"); credentials may sit in the URL. */
    url: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a "postgres://user:password@host:port/database" URL' }),
    /** Schema of the tables (created if missing). */
    schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL name (letters, digits, _)').default('public'),
    pool: z
      .strictObject({
        /** Connections per replica at most; replicas × max must stay under the server's max_connections. */
        max: z.int().min(2).max(1000).default(10),
        idleTimeoutMs: z.int().positive().default(30_000),
        connectionTimeoutMs: z.int().positive().default(10_000),
      })
      .prefault({}),
  }),
]);

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      listen: hostPort.default('127.0.0.1:8080'),
      /** Zone for CDN-style datetimes and the daily quota reset (Tencent uses +08:00). */
      timezone: z
        .string()
        .regex(/^[+-](?:0\d|1[0-4]):[0-5]\d$/, 'must be a UTC offset from -14:00 to +14:00 like "+08:00"')
        .default('+08:00'),
      maxBodyBytes: z.int().positive().default(1024 * 1024),
      retentionDays: z.int().positive().default(30),
      connections,
      /** One JSON line per API request (action, account, code, duration) through the logger, at level info. */
      accessLog: z.boolean().default(true),
    })
    .prefault({}),
  store: store.default({ driver: 'sqlite', path: './data/edgepurge.db' }),
  fanout: z
    .strictObject({
      /** An edge serves hits only while its lease is fresher than this (DESIGN invariant 4). */
      leaseMs: z.int().positive().max(60_000).default(10_000),
      /** A task still processing after this long becomes `timeout`. */
      taskTimeoutMs: z.int().positive().default(300_000),
    })
    .prefault({}),
  /** Prometheus /metrics of every process (docs/metrics.md); /healthz and /readyz are always served. */
  metrics: z
    .strictObject({
      /** false: the control plane keeps no metrics and /metrics answers 404 (nodes: omit their `metrics.listen`). */
      enabled: z.boolean().default(true),
      /**
       * Bearer token every /metrics asks for (control plane, edges, agents). Without it /metrics is open
       * and leaves out the per-account series, so it tells nobody how much each tenant purges (docs/security.md).
       */
      token: z.string().min(16).optional(),
    })
    .prefault({}),
  /** How the control plane delivers completion webhooks (docs/webhooks.md): one setting for every account. */
  webhookDelivery: z
    .strictObject({
      /** One attempt's limit, connect to last byte of the answer's head. */
      timeoutMs: z.int().positive().max(120_000).default(10_000),
      /** Retries stop this long after the job settled; the delivery is then `failed`. */
      retryForMs: z.int().positive().default(24 * 3_600_000),
      /** Attempts at most, the first included. */
      maxAttempts: z.int().positive().max(1000).default(30),
      /** Exponential backoff between attempts: base × 2^(attempt-1), capped, with jitter (half to all of it). */
      backoff: z
        .strictObject({
          baseMs: z.int().positive().default(1_000),
          maxMs: z.int().positive().default(3_600_000),
        })
        .prefault({}),
      /** Deliveries in flight at once per control plane: a slow receiver holds at most this many. */
      concurrency: z.int().positive().max(256).default(8),
      /** How often the outbox is polled for due retries (new events wake it at once). */
      pollMs: z.int().positive().max(60_000).default(1_000),
    })
    .prefault({}),
  accounts: z.array(account).default([]),
  nodes: z.array(node).default([]),
  /** `edgepurge start` also serves a small demo origin here (the first-run walkthrough). */
  demo: z.strictObject({ origin: hostPort }).optional(),
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type AccountConfig = Config['accounts'][number];
export type ZoneConfig = AccountConfig['zones'][number];
export type DomainConfig = ZoneConfig['domains'][number];
export type NodeConfig = Config['nodes'][number];
export type WebhookConfig = AccountConfig['webhooks'][number];
export type WebhookDeliveryConfig = Config['webhookDelivery'];
export type DriverConfig = NonNullable<NodeConfig['driver']>;

/**
 * Whether a node's cache stops serving hits by itself when its lease lapses (DESIGN "Where each cache
 * gets its guarantees"): the built-in edge and Varnish (edgepurge.vcl) do; nginx cannot, so an nginx
 * node is never counted as fenced and its tasks wait until it applies them or they time out.
 */
export const fencesItself = (node: Pick<NodeConfig, 'driver'>): boolean => node.driver === undefined || node.driver.type === 'varnish';
export type QuotaLimits = z.output<typeof quota>;
