// `edgepurge serve`: the control plane on the configured store, until SIGINT/SIGTERM.
import type { Config } from '../config/schema.ts';
import { ControlPlane } from '../server/control-plane.ts';
import { periodicDuty } from '../server/duties.ts';
import { systemClock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { openStore } from '../store/index.ts';
import type { TaskStore } from '../store/task-store.ts';

export interface RunningControlPlane {
  readonly port: number;
  readonly host: string;
  readonly controlPlane: ControlPlane;
  readonly store: TaskStore;
  close(): Promise<void>;
}

const DAY = 86_400_000;

export async function startControlPlane(config: Readonly<Config>, logger: Logger, listen?: string): Promise<RunningControlPlane> {
  const store = await openStore(config.store);
  const controlPlane = new ControlPlane({ config, store, clock: systemClock, logger });
  const { host, port } = await controlPlane.start(listen);
  // Retention (30 days by default): pruned in the background, in bounded batches inside the store, by the
  // leading replica only (a duty).
  controlPlane.duties.register(
    periodicDuty('pruning', 10 * 60_000, async () => {
      const removed = await store.prune(systemClock.now() - config.server.retentionDays * DAY);
      if (removed) logger.info('pruned old tasks', { removed });
    }, logger),
  );
  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    controlPlane,
    store,
    close: () =>
      (closing ??= (async () => {
        await controlPlane.close();
        await store.close();
      })()),
  };
}
