// ReplicaCoordination on PostgreSQL (issue 9): leader election by advisory lock (leader.ts), the exact
// per-account rate limit (`rate_buckets`) and the replay guard (`replay_nonces`, migration 3), each one
// statement on a small pool of its own with synchronous_commit=off, so admissions never queue behind the
// store's job batches and never wait for a WAL flush.
import pg from 'pg';
import type { PoolConfig } from 'pg';
import type { LeaderLease, ReplicaCoordination } from '../replica-coordination.ts';
import { PgLeaderLock } from './leader.ts';
import { newPool } from './pool.ts';

/** Connections of the admission pool: one statement per request, each a few hundred µs. */
const ADMISSION_POOL_MAX = 4;

export class PostgresReplicas implements ReplicaCoordination {
  readonly #config: PoolConfig;
  readonly #schema: string;
  readonly #onError: (e: unknown) => void;
  #pool: pg.Pool | null = null;
  readonly #leases = new Set<PgLeaderLock>();
  #closed = false;

  /** `config`: the store's own connection settings (search_path on its schema). */
  constructor(config: PoolConfig, schema: string, onError: (e: unknown) => void = () => {}) {
    this.#config = config;
    this.#schema = schema;
    this.#onError = onError;
  }

  #admission(): pg.Pool {
    if (this.#closed) throw new Error('the store was closed');
    if (!this.#pool) {
      const options = `${this.#config.options ?? ''} -c synchronous_commit=off`.trim();
      this.#pool = newPool({ ...this.#config, max: ADMISSION_POOL_MAX, options, application_name: 'edgepurge-admission' });
    }
    return this.#pool;
  }

  leaderLock(name: string): LeaderLease {
    const lease = new PgLeaderLock({ client: this.#config, key: `edgepurge.leader.${this.#schema}.${name}`, onError: this.#onError });
    this.#leases.add(lease);
    return lease;
  }

  async takeToken(key: string, perSecond: number, burst: number, nowMs: number): Promise<boolean> {
    // Refill since `at`, then take one only if a whole token is there: a refused call writes nothing.
    const { rowCount } = await this.#admission().query(
      `INSERT INTO rate_buckets AS b (key, tokens, at) VALUES ($1, $3::float8 - 1, $4)
       ON CONFLICT (key) DO UPDATE SET
         tokens = least($3::float8, b.tokens + greatest(0, $4 - b.at) / 1000.0 * $2::float8) - 1,
         at = greatest(b.at, $4)
       WHERE least($3::float8, b.tokens + greatest(0, $4 - b.at) / 1000.0 * $2::float8) >= 1`,
      [key, perSecond, burst, nowMs],
    );
    return rowCount === 1;
  }

  async claimNonce(key: string, expiresAt: number): Promise<boolean> {
    const { rowCount } = await this.#admission().query('INSERT INTO replay_nonces (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, expiresAt]);
    return rowCount === 1;
  }

  async expireNonces(nowMs: number): Promise<number> {
    let removed = 0;
    // Bounded batches: one statement never holds many row locks or runs long.
    for (;;) {
      const { rowCount } = await this.#admission().query(
        'DELETE FROM replay_nonces WHERE key IN (SELECT key FROM replay_nonces WHERE expires_at <= $1 ORDER BY expires_at LIMIT 10000)',
        [nowMs],
      );
      removed += rowCount ?? 0;
      if ((rowCount ?? 0) < 10_000) return removed;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#leases].map((l) => l.close()));
    await this.#pool?.end();
  }
}
