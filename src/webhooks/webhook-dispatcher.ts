// Delivers the webhook outbox: claims due rows, POSTs the signed event, records each attempt with
// exponential backoff and jitter, gives up after the configured bound (issue 10, docs/webhooks.md).
// At-least-once: a row leaves the outbox only once a 2xx was recorded; a crash mid-attempt leaves it
// held until its hold lapses, then it is sent again (receivers de-duplicate on EdgePurge-Event-Id).
import type { Config } from '../config/schema.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { TaskStore, WebhookDelivery, WebhookOutbox } from '../store/task-store.ts';
import { EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, signatureHeader } from './signature.ts';

/** What the dispatcher reports per attempt (metrics): `retry` means failed and scheduled again. */
export type DeliveryResult = 'delivered' | 'retry' | 'failed';

export interface WebhookDispatcherOptions {
  readonly store: TaskStore;
  /** Read per attempt: a reloaded configuration (SIGHUP) applies to the next attempt. */
  readonly config: () => Readonly<Config>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The job as the body carries it (the admin API's job view); undefined when the job is gone (pruned). */
  readonly jobView: (appId: number, jobId: string) => Promise<WebhookJobView | undefined>;
  readonly onAttempt?: (result: DeliveryResult) => void;
  /** Random in [0, 1) for the jitter (tests pin it). */
  readonly random?: () => number;
}

/** The part of the admin job view the body is made of. */
export interface WebhookJobView {
  readonly Tasks: ReadonlyArray<{ readonly Status: string; readonly Nodes: ReadonlyArray<{ readonly NodeId: string; readonly State: string; readonly Driver?: string | null }> }>;
  readonly [key: string]: unknown;
}

/** Extra hold beyond one attempt's timeout: building the body and recording the attempt. */
const HOLD_MARGIN_MS = 5_000;

/** The delay before attempt n + 1 after n failed ones: base × 2^(n-1) capped at max, then "equal jitter" (half fixed, half random). */
export function backoffDelay(failedAttempts: number, backoff: { readonly baseMs: number; readonly maxMs: number }, random: number): number {
  const full = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, failedAttempts - 1));
  return Math.round(full / 2 + (full / 2) * random);
}

/** The JSON body of one delivery: the event, the job, its tasks with per-node progress, and a per-node summary. */
export function webhookBody(d: WebhookDelivery, view: WebhookJobView): string {
  const { Tasks, ...job } = view;
  const nodes = new Map<string, { NodeId: string; Driver: string | null; applied: number; fenced: number; failed: number; pending: number }>();
  const statuses: Record<string, number> = {};
  for (const t of Tasks) {
    statuses[t.Status] = (statuses[t.Status] ?? 0) + 1;
    for (const n of t.Nodes) {
      let s = nodes.get(n.NodeId);
      if (!s) nodes.set(n.NodeId, (s = { NodeId: n.NodeId, Driver: n.Driver ?? null, applied: 0, fenced: 0, failed: 0, pending: 0 }));
      if (n.State === 'applied' || n.State === 'fenced' || n.State === 'failed' || n.State === 'pending') s[n.State]++;
    }
  }
  return JSON.stringify({
    id: d.eventId,
    event: d.event,
    created: new Date(d.createdAt).toISOString(),
    appId: d.appId,
    job,
    tasks: Tasks,
    summary: { tasks: statuses, nodes: [...nodes.values()] },
  });
}

export class WebhookDispatcher {
  readonly #o: WebhookDispatcherOptions;
  readonly #outbox: WebhookOutbox;
  readonly #inFlight = new Map<string, AbortController>();
  #timer: NodeJS.Timeout | undefined;
  #pumping: Promise<void> | undefined;
  #pumpAgain = false;
  #running = false;

  constructor(options: WebhookDispatcherOptions) {
    const s = options.store;
    if (!s.claimWebhookDeliveries || !s.recordWebhookAttempt || !s.webhookDeliveries || !s.webhookOutboxDepth) {
      throw new Error('this store has no webhook outbox: webhooks need the sqlite or postgres store');
    }
    this.#o = options;
    this.#outbox = s as TaskStore & WebhookOutbox;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Starts polling the outbox (rows left by a previous run are delivered first). Idempotent. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const poll = () => {
      this.wake();
      this.#timer = setTimeout(poll, this.#o.config().webhookDelivery.pollMs);
      this.#timer.unref();
    };
    poll();
  }

  /** Stops claiming and aborts attempts in flight (their rows stay in the outbox and are sent again later). Idempotent. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    for (const c of this.#inFlight.values()) c.abort();
    await this.#pumping;
    while (this.#inFlight.size > 0) await new Promise((r) => setTimeout(r, 10));
  }

  /** Looks for due rows soon (a job just settled). Never blocks its caller. */
  wake(): void {
    if (!this.#running) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = this.#pump().finally(() => (this.#pumping = undefined));
  }

  async #pump(): Promise<void> {
    try {
      do {
        this.#pumpAgain = false;
        const cfg = this.#o.config().webhookDelivery;
        const free = cfg.concurrency - this.#inFlight.size;
        if (free <= 0 || !this.#running) return;
        const rows = await this.#outbox.claimWebhookDeliveries(this.#o.clock.now(), free, cfg.timeoutMs + HOLD_MARGIN_MS);
        for (const d of rows) this.#deliver(d);
        if (rows.length === free) this.#pumpAgain = true;
      } while (this.#pumpAgain && this.#running);
    } catch (e) {
      this.#o.logger.error('webhook outbox: claiming deliveries failed', { error: e });
    }
  }

  #deliver(d: WebhookDelivery): void {
    const abort = new AbortController();
    this.#inFlight.set(d.eventId, abort);
    void this.#attempt(d, abort.signal)
      .catch((e: unknown) => this.#o.logger.error('webhook delivery: recording an attempt failed', { error: e, eventId: d.eventId }))
      .finally(() => {
        this.#inFlight.delete(d.eventId);
        this.wake();
      });
  }

  async #attempt(d: WebhookDelivery, stopped: AbortSignal): Promise<void> {
    const config = this.#o.config();
    const cfg = config.webhookDelivery;
    const hook = config.accounts.find((a) => a.appId === d.appId)?.webhooks.find((w) => w.url === d.url);
    const give = async (error: string) => {
      await this.#outbox.recordWebhookAttempt({ eventId: d.eventId, at: this.#o.clock.now(), ok: false, httpStatus: null, error, retryAt: null });
      this.#o.onAttempt?.('failed');
    };
    if (!hook) return give('the webhook is no longer configured for this account');
    const view = await this.#o.jobView(d.appId, d.jobId);
    if (!view) return give('the job is no longer stored');
    const body = webhookBody(d, view);
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'EdgePurge-Webhooks/1',
          [SIGNATURE_HEADER]: signatureHeader(hook.secret, this.#o.clock.now() / 1000, body),
          [EVENT_ID_HEADER]: d.eventId,
          [EVENT_HEADER]: d.event,
        },
        body,
        signal: AbortSignal.any([stopped, AbortSignal.timeout(cfg.timeoutMs)]),
      });
      status = res.status;
      // Only the status counts: the receiver's body is never read (nor buffered).
      await res.body?.cancel().catch(() => {});
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (e) {
      if (stopped.aborted) return; // shutting down: the row stays held, then is sent again
      const err = e as Error & { cause?: { code?: string; message?: string } };
      error = err.name === 'TimeoutError' ? `no answer within ${cfg.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
    }
    const at = this.#o.clock.now();
    if (error === null) {
      await this.#outbox.recordWebhookAttempt({ eventId: d.eventId, at, ok: true, httpStatus: status, error: null, retryAt: null });
      this.#o.onAttempt?.('delivered');
      return;
    }
    const attempts = d.attempts + 1;
    const retryAt = at + backoffDelay(attempts, cfg.backoff, (this.#o.random ?? Math.random)());
    const again = attempts < cfg.maxAttempts && retryAt <= d.createdAt + cfg.retryForMs;
    await this.#outbox.recordWebhookAttempt({ eventId: d.eventId, at, ok: false, httpStatus: status, error, retryAt: again ? retryAt : null });
    this.#o.onAttempt?.(again ? 'retry' : 'failed');
    if (!again) this.#o.logger.warn('webhook delivery gave up', { eventId: d.eventId, url: d.url, attempts, error });
  }
}
