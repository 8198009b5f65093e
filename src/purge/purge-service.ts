// Job creation: targets checked against the account's domains and zone, quotas charged, one atomic job.
import type { AccountConfig, ZoneConfig } from '../config/schema.ts';
import type { Clock } from '../shared/clock.ts';
import { ApiError, type ErrorCode } from '../shared/errors.ts';
import { newJobId } from '../shared/ids.ts';
import { DuplicateJobIdError, QuotaExceededError, type NewTask, type TaskStore, type WebhookRouter } from '../store/task-store.ts';
import type { Directory } from './directory.ts';
import { quotaDay, quotaFor, units } from './quotas.ts';
import { parseHostTarget, parseTagTarget, parseUrlTarget, type TargetErrors } from './targets.ts';
import type { JobSource, Method, TaskRecord, TaskType } from './types.ts';

export interface SubmitRequest {
  readonly account: AccountConfig;
  readonly source: JobSource;
  readonly secretId: string;
  readonly clientIp: string;
  readonly type: TaskType;
  readonly method: Method;
  /** EdgeOne ZoneId ('*' = every zone of the account); null for CDN and legacy calls, which name hosts only. */
  readonly zoneId: string | null;
  readonly targets: readonly unknown[];
  readonly encodeUrl: boolean;
  /** purge_cache_tag: the domains whose tagged objects are purged (EdgeOne CacheTag.Domains). */
  readonly tagDomains?: readonly unknown[];
  /** prefetch_url: headers sent to the origin. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface FailedTargets {
  readonly reason: string;
  readonly targets: string[];
}

export interface SubmitResult {
  readonly jobId: string;
  readonly failed: FailedTargets[];
  readonly tasks: readonly TaskRecord[];
}

interface DialectErrors extends TargetErrors {
  readonly batch: ErrorCode;
  readonly daily: ErrorCode;
  /** A host that is not the account's: EdgeOne lists it in FailedList; CDN and legacy refuse the request. */
  readonly noHost: ErrorCode | 'failedList';
}

/** Each protocol names the same refusals differently (TENCENT-API §3.1, §3.2, §4.1, §1.4). */
function dialect(source: JobSource, type: TaskType): DialectErrors {
  if (source === 'teo') {
    return {
      invalid: 'InvalidParameter.Target',
      wildcard: 'InvalidParameter.Target',
      tooLong: 'InvalidParameter.Target',
      batch: 'LimitExceeded.BatchQuota',
      daily: 'LimitExceeded.DailyQuota',
      noHost: 'failedList',
    };
  }
  const prefetch = type === 'prefetch_url';
  const path = type === 'purge_prefix';
  return {
    invalid: 'InvalidParameter.CdnParamError',
    wildcard: prefetch ? 'InvalidParameter.CdnPushWildcardNotAllowed' : 'InvalidParameter.CdnPurgeWildcardNotAllowed',
    tooLong: 'InvalidParameter.CdnUrlExceedLength',
    batch: prefetch ? 'LimitExceeded.CdnPushExceedBatchLimit' : path ? 'LimitExceeded.CdnPurgePathExceedBatchLimit' : 'LimitExceeded.CdnPurgeUrlExceedBatchLimit',
    daily: prefetch ? 'LimitExceeded.CdnPushExceedDayLimit' : path ? 'LimitExceeded.CdnPurgePathExceedDayLimit' : 'LimitExceeded.CdnPurgeUrlExceedDayLimit',
    noHost: 'ResourceNotFound.CdnHostNotExists',
  };
}

interface PlannedTask extends NewTask {
  readonly zoneId: string;
}

export interface PurgeServiceOptions {
  readonly store: TaskStore;
  readonly directory: Directory;
  readonly clock: Clock;
  readonly timezone: string;
  /** Called after a job with fanned-out tasks is committed (wakes the log streams). */
  readonly onCommitted?: (lastSeq: number) => void;
  /** The webhook subscriptions a job settled at creation (no task fanned out) is enqueued for, in its transaction. */
  readonly webhooks?: WebhookRouter;
  /** Called after a job settled at creation is committed with outbox rows (wakes the webhook dispatcher). */
  readonly onSettled?: () => void;
}

export class PurgeService {
  readonly #o: PurgeServiceOptions;
  constructor(options: PurgeServiceOptions) {
    this.#o = options;
  }

  get directory(): Directory {
    return this.#o.directory;
  }

  /** Validates, charges the quota and commits one job; the job is durable when this resolves. */
  async submit(req: SubmitRequest): Promise<SubmitResult> {
    const errs = dialect(req.source, req.type);
    const { account } = req;
    const zone = this.#zoneOf(req);
    if (req.type === 'purge_all' && !zone) {
      throw new ApiError('InvalidParameter.ParameterError', 'purge_all needs a concrete ZoneId ("*" is not allowed)');
    }
    const failed = new Map<string, string[]>();
    const fail = (reason: string, target: string) => {
      const list = failed.get(reason) ?? [];
      list.push(target);
      failed.set(reason, list);
    };
    /** The zone that holds `host` for this request, or undefined after recording the refusal. */
    const admit = (host: string, shown: string): ZoneConfig | undefined => {
      const entry = this.#o.directory.host(account.appId, host);
      if (entry && (!zone || entry.zone.zoneId === zone.zoneId)) return entry.zone;
      if (errs.noHost === 'failedList') {
        fail('domain not valid', shown);
        return undefined;
      }
      throw new ApiError(errs.noHost, `no such host: ${host}`);
    };

    const planned: PlannedTask[] = [];
    const seen = new Set<string>();
    const push = (t: Omit<PlannedTask, 'status' | 'fanOut'>, key: string) => {
      // Repeated targets in one request are one task (and one quota unit).
      if (seen.has(key)) return;
      seen.add(key);
      const fanOut = t.hosts.some((h) => this.#o.directory.nodesFor(h).length > 0);
      // Until an edge node serves one of its hosts there is nothing to wait for.
      planned.push({ ...t, status: fanOut ? 'processing' : 'success', fanOut });
    };

    if (req.type === 'purge_all') {
      const z = zone as ZoneConfig;
      push({ target: z.name, hosts: z.domains.map((d) => d.host), logTarget: '', zoneId: z.zoneId }, z.zoneId);
    } else {
      if (req.targets.length === 0) throw new ApiError(req.source === 'teo' ? 'InvalidParameter.ParameterError' : 'InvalidParameter.CdnParamError', 'Targets must not be empty');
      this.#checkBatch(req, errs);
      if (req.type === 'purge_cache_tag') {
        // The domains are checked once: a refused one is what FailedList names, not the tags.
        const byZone = new Map<string, string[]>();
        for (const host of this.#tagDomains(req, zone, errs)) {
          const z = admit(host, host);
          if (z) byZone.set(z.zoneId, [...(byZone.get(z.zoneId) ?? []), host]);
        }
        for (const raw of req.targets) {
          const tag = parseTagTarget(raw, errs);
          for (const [zoneId, hosts] of byZone) push({ target: tag, hosts, zoneId }, `${zoneId} ${tag}`);
        }
      } else if (req.type === 'purge_host') {
        for (const raw of req.targets) {
          const host = parseHostTarget(raw, errs);
          const z = admit(host, host);
          if (z) push({ target: host, hosts: [host], zoneId: z.zoneId }, host);
        }
      } else {
        for (const raw of req.targets) {
          const u = parseUrlTarget(raw, req.encodeUrl, errs);
          const z = admit(u.host, u.display);
          if (!z) continue;
          const t = { target: u.display, hosts: [u.host], logTarget: u.canonical, zoneId: z.zoneId };
          push(req.headers ? { ...t, headers: req.headers } : t, u.canonical);
        }
      }
    }
    const failedList = [...failed].map(([reason, targets]) => ({ reason, targets }));
    if (planned.length === 0) {
      throw new ApiError(errs.noHost === 'failedList' ? 'InvalidParameter.DomainNotFound' : errs.noHost, `no target belongs to ${zone ? `zone ${zone.zoneId}` : 'this account'}: ${failedList.flatMap((f) => f.targets).slice(0, 5).join(', ')}`);
    }

    const limit = quotaFor(account.quotas, req.type);
    // A unit per distinct target: a tag purged in two zones (ZoneId "*") is two tasks but one target.
    const amount = units(req.type, new Set(planned.map((t) => t.target)).size);
    const now = this.#o.clock.now();
    const zones = new Set(planned.map((t) => t.zoneId));
    const jobZone = zone?.zoneId ?? (zones.size === 1 ? [...zones][0]! : '*');
    for (let attempt = 0; ; attempt++) {
      const jobId = newJobId(now);
      try {
        const { tasks } = await this.#o.store.createJob(
          {
            jobId,
            appId: account.appId,
            zoneId: jobZone,
            type: req.type,
            method: req.method,
            createdAt: now,
            secretId: req.secretId,
            clientIp: req.clientIp,
            source: req.source,
            tasks: planned,
          },
          { quotaType: req.type, day: quotaDay(now, this.#o.timezone), amount, daily: limit.daily },
          this.#o.webhooks,
        );
        const last = tasks.reduce((m, t) => Math.max(m, t.seq ?? 0), 0);
        if (last > 0) this.#o.onCommitted?.(last);
        // Settled at creation with an outbox row to deliver: wake the dispatcher rather than wait for its poll.
        if (!tasks.some((t) => t.status === 'processing') && (this.#o.webhooks?.({ appId: account.appId, jobId, event: 'job.succeeded' }).length ?? 0) > 0) {
          this.#o.onSettled?.();
        }
        return { jobId, failed: failedList, tasks };
      } catch (e) {
        if (e instanceof QuotaExceededError) {
          throw new ApiError(errs.daily, `daily ${req.type} quota exhausted: ${e.used} of ${limit.daily} used, this request needs ${amount}`);
        }
        if (e instanceof DuplicateJobIdError && attempt < 20) continue;
        throw e;
      }
    }
  }

  /** Quota usage of `account` today, per type. */
  async usage(account: AccountConfig): Promise<ReadonlyMap<TaskType, number>> {
    return this.#o.store.quotaUsage(account.appId, quotaDay(this.#o.clock.now(), this.#o.timezone));
  }

  #zoneOf(req: SubmitRequest): ZoneConfig | undefined {
    if (req.zoneId === null || req.zoneId === '*') return undefined;
    const z = this.#o.directory.zone(req.account.appId, req.zoneId);
    if (!z) throw new ApiError('InvalidParameter.ZoneNotFound', `zone ${req.zoneId} does not exist`);
    return z;
  }

  #checkBatch(req: SubmitRequest, errs: DialectErrors): void {
    const limit = quotaFor(req.account.quotas, req.type);
    if (req.targets.length > limit.batch) {
      throw new ApiError(errs.batch, `${req.targets.length} targets exceed the ${req.type} limit of ${limit.batch} per request`);
    }
  }

  #tagDomains(req: SubmitRequest, zone: ZoneConfig | undefined, errs: DialectErrors): string[] {
    if (req.tagDomains && req.tagDomains.length > 0) return [...new Set(req.tagDomains.map((d) => parseHostTarget(d, errs)))];
    // The field reference requires CacheTag.Domains, the docs' example omits it: default to the zone's domains.
    if (zone) return zone.domains.map((d) => d.host);
    throw new ApiError('MissingParameter', 'CacheTag.Domains is required for purge_cache_tag with ZoneId "*"');
  }
}
