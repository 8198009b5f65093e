// The store backends, registered statically by name (STYLE 4), and openStore() for the configured one.
import { SqliteTaskStore } from './sqlite/sqlite-task-store.ts';
import type { TaskStore } from './task-store.ts';

export type { TaskStore } from './task-store.ts';
export { DuplicateJobIdError, QuotaExceededError } from './task-store.ts';
export { SqliteTaskStore } from './sqlite/sqlite-task-store.ts';
export type { PostgresTaskStore } from './postgres/postgres-task-store.ts';

/** The `store` section of edgepurge.yaml (see src/config/schema.ts). */
export type StoreConfig =
  | { readonly driver: 'sqlite'; readonly path: string }
  | {
      readonly driver: 'postgres';
      readonly url: string;
      readonly schema?: string;
      readonly pool?: { readonly max?: number; readonly idleTimeoutMs?: number; readonly connectionTimeoutMs?: number };
    };

export type StoreDriver = StoreConfig['driver'];

type Factory<C extends StoreConfig> = (config: C) => Promise<TaskStore>;

/**
 * Every backend by name. SQLite is built in; the others load on first use so that a deployment
 * that never uses them never pays for (or needs) their dependencies.
 */
export const STORE_DRIVERS: { readonly [D in StoreDriver]: Factory<Extract<StoreConfig, { driver: D }>> } = {
  sqlite: async (config) => new SqliteTaskStore({ path: config.path }),
  postgres: async (config) => {
    let mod: typeof import('./postgres/postgres-task-store.ts');
    try {
      mod = await import('./postgres/postgres-task-store.ts');
    } catch (e) {
      throw new Error(
        `the PostgreSQL task store cannot load (${(e as Error).message}); install the \`pg\` package (npm install pg), ` +
          'or set `store: { driver: sqlite, path: ./data/edgepurge.db }` in edgepurge.yaml (one control plane on SQLite)',
        { cause: e },
      );
    }
    return new mod.PostgresTaskStore(config);
  },
};

/** Creates the configured store and starts it (migrations applied). The caller owns close(). */
export async function openStore(config: StoreConfig): Promise<TaskStore> {
  const store = await createStore(config);
  await store.start();
  return store;
}

function createStore(config: StoreConfig): Promise<TaskStore> {
  switch (config.driver) {
    case 'sqlite':
      return STORE_DRIVERS.sqlite(config);
    case 'postgres':
      return STORE_DRIVERS.postgres(config);
  }
}
