// Applies the purge log to a cache through its EdgeDriver, in order, one operation at a time, with
// retries: the agent's EdgeTarget for `edgepurge agent`. The applied seq moves only once the cache
// has executed an entry, so nothing is acked that was not applied (issue 8).
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { DriverError, type DriverCommand, type DriverPrefetchOutcome, type DriverReport, type EdgeDriver } from './edge-driver.ts';

/** One queued step of the log; a drop carries the queued purges it superseded (they are reported as covered by it). */
type Step =
  | { readonly kind: 'apply'; readonly command: DriverCommand }
  | { readonly kind: 'advance'; readonly seq: number }
  | { readonly kind: 'drop'; readonly seq: number; readonly covers: readonly DriverCommand[] };

/**
 * What the cache executed for one entry of a task, as the agent reports it to the control plane
 * (structurally the fan-out's ExecutionReport): the driver's report, or `drop_all` for an entry the
 * cache was emptied over before it ran.
 */
export interface DriverExecution {
  readonly seq: number;
  readonly taskId: number;
  readonly executedAs: DriverReport['executedAs'] | 'drop_all';
  readonly matched?: number;
  readonly note?: string;
}

export interface DriverTargetOptions {
  readonly driver: EdgeDriver;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly nodeId: string;
  /** Seq already applied (from the agent's state file); default 0. */
  readonly appliedSeq?: number;
  /** Called after every applied step, so the agent acks promptly. */
  readonly onApplied?: (seq: number) => void;
  /** Retry backoff bounds for retryable driver errors. Default 100 ms … 5 s; non-retryable ones wait the maximum. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Most purges handed to driver.applyBatch at once. Default 256. */
  readonly batchSize?: number;
}

/** What the agent shows about its cache (the last report and the reason it is stuck, if it is). */
export interface DriverTargetStatus {
  readonly driver: string;
  readonly appliedSeq: number;
  readonly queued: number;
  readonly lastReport?: DriverReport & { readonly seq: number };
  readonly lastError?: string;
  readonly applied: number;
  /** Purges the cache executed, by type (prefetches run beside the log and are not counted). */
  readonly appliedByType: Readonly<Record<string, number>>;
  /** Failed driver calls: `retryable` ones, and ones the cache `refused` (retried at the slowest pace). */
  readonly errors: { readonly retryable: number; readonly refused: number };
  /** Driver calls that repeated a failed step. */
  readonly retries: number;
  /** The lease the agent last granted (ms since epoch); -Infinity before the first. */
  readonly leaseUntil: number;
}

/**
 * EdgeTarget (src/fanout/edge-agent.ts) over an EdgeDriver. `apply`, `advanceTo` and `dropAll` only queue;
 * a single loop executes the queue in order and retries a failed step until it succeeds or close() is
 * called. `appliedSeq` is what the cache has really executed.
 */
export class DriverTarget {
  readonly #o: DriverTargetOptions;
  #applied: number;
  /** Highest seq queued (replays from a reconnected stream are dropped against it). */
  #queuedSeq: number;
  readonly #queue: Step[] = [];
  #running: Promise<void> | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  #lastReport: (DriverReport & { seq: number }) | undefined;
  #lastError: string | undefined;
  #count = 0;
  /** Executions not yet handed to the agent (takeReports): at most the entries executed between two acks. */
  #executions: DriverExecution[] = [];
  readonly #byType: Record<string, number> = {};
  readonly #errors = { retryable: 0, refused: 0 };
  #retries = 0;
  #leaseUntil = Number.NEGATIVE_INFINITY;
  #leaseChain: Promise<void> = Promise.resolve();

  constructor(options: DriverTargetOptions) {
    this.#o = options;
    this.#applied = options.appliedSeq ?? 0;
    this.#queuedSeq = this.#applied;
  }

  get appliedSeq(): number {
    return this.#applied;
  }

  /** The driver's name, sent with every ack. */
  get driver(): string {
    return this.#o.driver.name;
  }

  /**
   * What the cache executed since the last call, oldest first, each entry once; every seq in it is at or
   * below appliedSeq (reports are queued before appliedSeq moves). Entries without a taskId are not reported.
   */
  takeReports(): DriverExecution[] {
    const out = this.#executions;
    this.#executions = [];
    return out;
  }

  status(): DriverTargetStatus {
    return {
      driver: this.#o.driver.name,
      appliedSeq: this.#applied,
      queued: this.#queue.length,
      applied: this.#count,
      appliedByType: { ...this.#byType },
      errors: { ...this.#errors },
      retries: this.#retries,
      leaseUntil: this.#leaseUntil,
      ...(this.#lastReport ? { lastReport: this.#lastReport } : {}),
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  apply(command: DriverCommand): void {
    if (command.seq <= this.#queuedSeq) return;
    this.#queuedSeq = command.seq;
    this.#enqueue({ kind: 'apply', command });
  }

  advanceTo(seq: number): void {
    if (seq <= this.#queuedSeq) return;
    this.#queuedSeq = seq;
    this.#enqueue({ kind: 'advance', seq });
  }

  /** Empties the cache, then the log continues after `seq`; anything queued at or below it is superseded. */
  dropAll(seq: number): void {
    const covers: DriverCommand[] = [];
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const step = this.#queue[i]!;
      if (stepSeq(step) > seq) continue;
      this.#queue.splice(i, 1);
      if (step.kind === 'apply') covers.unshift(step.command);
      else if (step.kind === 'drop') covers.unshift(...step.covers);
    }
    this.#queuedSeq = Math.max(this.#queuedSeq, seq);
    // The drop goes first: later entries (seq > `seq`) must run on the emptied cache, not before it.
    this.#queue.unshift({ kind: 'drop', seq, covers });
    this.#kick();
  }

  /** Prefetches run beside the log (the agent counts them applied once started). */
  prefetch(command: DriverCommand): Promise<DriverPrefetchOutcome> {
    return this.#o.driver.prefetch(command);
  }

  /** Passes the lease to a cache that fences itself; in order, the latest value last. */
  renewLease(untilMs: number): void {
    this.#leaseUntil = Math.max(this.#leaseUntil, untilMs);
    const renew = this.#o.driver.renewLease?.bind(this.#o.driver);
    if (renew === undefined) return;
    this.#leaseChain = this.#leaseChain.then(() =>
      renew(untilMs).catch((e: unknown) => this.#o.logger.warn('could not renew the lease in the cache', { node: this.#o.nodeId, driver: this.#o.driver.name, error: e })),
    );
  }

  /** Stops after the step in progress (it is not acked unless it finished). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#running;
    await this.#leaseChain;
  }

  /** Resolves once every step queued so far has been executed (tests, shutdown). */
  async drained(): Promise<void> {
    const target = this.#queuedSeq;
    while (this.#applied < target && !this.#closed) await new Promise((r) => setTimeout(r, 5));
  }

  #enqueue(step: Step): void {
    this.#queue.push(step);
    this.#kick();
  }

  #kick(): void {
    this.#running ??= this.#loop().finally(() => {
      this.#running = undefined;
      if (this.#queue.length > 0 && !this.#closed) this.#kick();
    });
  }

  async #loop(): Promise<void> {
    let backoff = this.#o.retryMinMs ?? 100;
    let failedBefore = false;
    while (this.#queue.length > 0 && !this.#closed) {
      const batch = this.#takeBatch();
      try {
        if (failedBefore) this.#retries++;
        await this.#execute(batch);
        failedBefore = false;
        this.#lastError = undefined;
        backoff = this.#o.retryMinMs ?? 100;
      } catch (e) {
        // Put the batch back in front, unchanged, and try again after a pause.
        this.#queue.unshift(...batch);
        const retryable = !(e instanceof DriverError) || e.retryable;
        this.#errors[retryable ? 'retryable' : 'refused']++;
        failedBefore = true;
        this.#lastError = e instanceof Error ? e.message : String(e);
        const max = this.#o.retryMaxMs ?? 5000;
        const wait = retryable ? backoff + Math.random() * backoff : max;
        this.#o.logger.warn(retryable ? 'cache did not apply a purge; retrying' : 'cache refused a purge; fix the cause, retrying', {
          node: this.#o.nodeId, driver: this.#o.driver.name, seq: stepSeq(batch[0]!), error: this.#lastError, inMs: Math.round(wait),
        });
        await new Promise<void>((r) => {
          const t = setTimeout(r, wait);
          this.#wake = () => (clearTimeout(t), r());
        });
        this.#wake = undefined;
        backoff = Math.min(backoff * 2, max);
      }
    }
  }

  /** The next step, or a run of consecutive purges when the driver takes batches. */
  #takeBatch(): Step[] {
    const first = this.#queue.shift()!;
    if (first.kind !== 'apply' || this.#o.driver.applyBatch === undefined || first.command.type === 'prefetch_url') return [first];
    const batch: Step[] = [first];
    const max = this.#o.batchSize ?? 256;
    while (batch.length < max) {
      const next = this.#queue[0];
      if (next === undefined || next.kind !== 'apply' || next.command.type === 'prefetch_url') break;
      batch.push(this.#queue.shift()!);
    }
    return batch;
  }

  async #execute(batch: readonly Step[]): Promise<void> {
    const { driver } = this.#o;
    const first = batch[0]!;
    if (first.kind === 'drop') {
      const dropped = await driver.dropAll();
      this.#o.logger.info('emptied the cache', { node: this.#o.nodeId, driver: driver.name, seq: first.seq, removed: dropped.matched ?? 'not counted by the cache' });
      const emptied = 'the whole cache was emptied before this entry ran (the agent fell behind the log or started anew)';
      const counted = dropped.matched === undefined ? { note: emptied } : { matched: dropped.matched, note: `${emptied}; matched: every object removed` };
      for (const c of first.covers) this.#report(c, { executedAs: 'drop_all', ...counted });
      this.#done(first.seq);
      return;
    }
    if (first.kind === 'advance') {
      this.#done(first.seq);
      return;
    }
    const commands = batch.map((s) => (s as { command: DriverCommand }).command);
    const reports = commands.length > 1 && driver.applyBatch ? await driver.applyBatch(commands) : [await driver.apply(first.command)];
    const last = commands[commands.length - 1]!;
    const report = reports[reports.length - 1];
    if (report) this.#lastReport = { ...report, seq: last.seq };
    // What the cache really executed, per entry: for the control plane's per-node view, before appliedSeq moves.
    commands.forEach((c, i) => {
      const r = reports[i];
      if (!r) return;
      this.#o.logger.debug('applied', { node: this.#o.nodeId, seq: c.seq, type: c.type, method: c.method, executedAs: r.executedAs, matched: r.matched, note: r.note });
      this.#report(c, r);
    });
    this.#count += commands.length;
    for (const c of commands) this.#byType[c.type] = (this.#byType[c.type] ?? 0) + 1;
    this.#done(last.seq);
  }

  #report(c: DriverCommand, r: Omit<DriverExecution, 'seq' | 'taskId'>): void {
    if (c.taskId === undefined) return;
    this.#executions.push({ seq: c.seq, taskId: c.taskId, executedAs: r.executedAs, ...(r.matched === undefined ? {} : { matched: r.matched }), ...(r.note === undefined ? {} : { note: r.note }) });
  }

  #done(seq: number): void {
    if (seq > this.#applied) this.#applied = seq;
    this.#o.onApplied?.(this.#applied);
  }
}

const stepSeq = (s: Step): number => (s.kind === 'apply' ? s.command.seq : s.seq);
