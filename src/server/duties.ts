// The duties that must run on exactly one replica at a time (issue 9: timeouts and settling, pruning, nonce
// expiry, webhook delivery): started while this process leads, stopped the moment it stops leading.
import type { Logger } from '../shared/logger.ts';
import type { LeaderLease } from '../store/replica-coordination.ts';

/** One duty. start() runs when this process becomes leader (or at registration if it already is). */
export interface Duty {
  readonly name: string;
  start(): void;
  /** Stops at once (no new work); may resolve once in-flight work ended. Never called without a start(). */
  stop(): void | Promise<void>;
}

export interface DutiesOptions {
  readonly logger: Logger;
  /** The replicas' election; absent: this process is alone on its store and always leads. */
  readonly lease?: LeaderLease;
}

/** The duty registry of one control plane. Other components add theirs with register(). */
export class Duties {
  readonly #o: DutiesOptions;
  readonly #duties = new Set<Duty>();
  readonly #running = new Set<Duty>();
  #started = false;
  #closed = false;
  #unsubscribe: (() => void) | undefined;

  constructor(options: DutiesOptions) {
    this.#o = options;
  }

  /** This process runs the duties now. */
  get leader(): boolean {
    return this.#started && !this.#closed && (this.#o.lease?.isLeader ?? true);
  }

  /** Adds a duty; started now if this process leads. Returns a function that stops and removes it. */
  register(duty: Duty): () => Promise<void> {
    this.#duties.add(duty);
    if (this.leader) this.#start(duty);
    return async () => {
      this.#duties.delete(duty);
      await this.#stop(duty);
    };
  }

  /** Starts campaigning (or, alone on the store, leading). Idempotent. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const lease = this.#o.lease;
    if (!lease) return this.#follow(true);
    this.#unsubscribe = lease.onChange((leader) => this.#follow(leader));
    lease.start();
  }

  /** Stops every duty and gives up leadership. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    await Promise.all([...this.#running].map((d) => this.#stop(d)));
    await this.#o.lease?.close();
  }

  #follow(leader: boolean): void {
    if (this.#closed) return;
    this.#o.logger.info(leader ? 'this replica leads: duties started' : 'this replica no longer leads: duties stopped', { duties: [...this.#duties].map((d) => d.name) });
    for (const d of this.#duties) {
      if (leader) this.#start(d);
      else void this.#stop(d);
    }
  }

  #start(duty: Duty): void {
    if (this.#running.has(duty)) return;
    this.#running.add(duty);
    try {
      duty.start();
    } catch (e) {
      this.#o.logger.error('duty failed to start', { duty: duty.name, error: e });
    }
  }

  async #stop(duty: Duty): Promise<void> {
    if (!this.#running.delete(duty)) return;
    try {
      await duty.stop();
    } catch (e) {
      this.#o.logger.error('duty failed to stop', { duty: duty.name, error: e });
    }
  }
}

/**
 * A duty that runs `run` now and then every `everyMs` while leading; a run still going when leadership
 * ends is awaited by stop(), and runs never overlap.
 */
export function periodicDuty(name: string, everyMs: number, run: () => Promise<void>, logger: Logger): Duty {
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let on = false;
  const once = () => {
    if (!on || current) return;
    current = run()
      .catch((e: unknown) => logger.error(`${name} failed`, { error: e }))
      .finally(() => (current = undefined));
  };
  return {
    name,
    start() {
      on = true;
      timer = setInterval(once, everyMs);
      timer.unref();
      once();
    },
    async stop() {
      on = false;
      clearInterval(timer);
      await current;
    },
  };
}
