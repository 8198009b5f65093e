// Leader election among replicas on one PostgreSQL: a session-level advisory lock held on a dedicated
// connection. The server releases it the moment that session ends (process killed, connection cut), so
// another replica's next attempt (every retryMs) takes it; we drop leadership as soon as our connection
// errors, ends or fails a liveness probe, so two replicas never both believe they lead for long.
import pg from 'pg';
import type { ClientConfig } from 'pg';
import type { LeaderLease } from '../replica-coordination.ts';

export interface PgLeaderLockOptions {
  /** Connection settings of the dedicated session (never a pooled connection: the lock lives with it). */
  readonly client: ClientConfig;
  /** Advisory-lock name (schema-qualified by the caller, so two stores on one server elect apart). */
  readonly key: string;
  /** How often a follower tries the lock and a leader probes its session (default 1000 ms). */
  readonly retryMs?: number;
  /** Told when a session fails (the lease keeps campaigning). */
  readonly onError?: (e: unknown) => void;
}

export class PgLeaderLock implements LeaderLease {
  readonly #o: PgLeaderLockOptions;
  readonly #listeners = new Set<(leader: boolean) => void>();
  #client: pg.Client | null = null;
  #leader = false;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #started = false;
  #closed = false;

  constructor(options: PgLeaderLockOptions) {
    this.#o = options;
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  onChange(listener: (leader: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#tick();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
    this.#set(false);
    const c = this.#client;
    this.#client = null;
    // Ending the session releases the lock: the next replica takes it on its next attempt.
    await c?.end().catch(() => {});
  }

  #set(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    for (const l of [...this.#listeners]) l(leader);
  }

  #tick(): void {
    if (this.#closed) return;
    this.#running = this.#attempt().finally(() => {
      this.#running = undefined;
      if (this.#closed) return;
      this.#timer = setTimeout(() => this.#tick(), this.#o.retryMs ?? 1000);
      this.#timer.unref();
    });
  }

  /** One step: connect if needed; a follower tries the lock, a leader proves its session is alive. */
  async #attempt(): Promise<void> {
    try {
      const c = this.#client ?? (await this.#connect());
      const probe = this.#leader ? c.query('SELECT 1') : c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [this.#o.key]);
      const res = await withTimeout(probe, 2 * (this.#o.retryMs ?? 1000));
      if (!this.#leader && (res.rows[0] as { ok?: boolean } | undefined)?.ok === true && this.#client === c && !this.#closed) this.#set(true);
    } catch (e) {
      this.#o.onError?.(e);
      this.#drop();
    }
  }

  async #connect(): Promise<pg.Client> {
    // The pid in the name tells operators (pg_stat_activity) and tests which replica leads.
    const c = new pg.Client({ ...this.#o.client, keepAlive: true, application_name: `edgepurge-leader ${process.pid}` });
    // A dead session means a lost lock: step down at once, not at the next probe.
    c.on('error', (e) => {
      this.#o.onError?.(e);
      if (this.#client === c) this.#drop();
    });
    c.on('end', () => {
      if (this.#client === c) this.#drop();
    });
    this.#client = c;
    try {
      await c.connect();
    } catch (e) {
      if (this.#client === c) this.#client = null;
      throw e;
    }
    return c;
  }

  #drop(): void {
    const c = this.#client;
    this.#client = null;
    this.#set(false);
    c?.removeAllListeners('end');
    void c?.end().catch(() => {});
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`leader session did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
