// What every action handler receives: the caller (account, key, address) and the purge domain.
import type { AccountConfig } from '../config/schema.ts';
import type { Directory } from '../purge/directory.ts';
import type { PurgeService } from '../purge/purge-service.ts';
import type { Clock } from '../shared/clock.ts';
import type { TaskStore } from '../store/task-store.ts';

export interface ActionContext {
  readonly account: AccountConfig;
  readonly secretId: string;
  readonly clientIp: string;
  readonly purge: PurgeService;
  readonly store: TaskStore;
  readonly directory: Directory;
  readonly clock: Clock;
  /** Zone for CDN-style datetimes and quota days. */
  readonly timezone: string;
}

/** An action maps protocol fields to the purge domain and back; it never touches SQL or HTTP. */
export type ActionHandler = (ctx: ActionContext, params: Record<string, unknown>) => Promise<Record<string, unknown>>;
