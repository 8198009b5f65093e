// `edgepurge agent`: one node whose cache is Varnish or nginx. Streams the purge log like the built-in
// edge, applies each entry through the node's driver, acks what the cache executed, and keeps its
// applied seq on disk so a restart resumes instead of emptying the cache.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config/load.ts';
import type { Config, DriverConfig, NodeConfig } from '../config/schema.ts';
import { DriverTarget } from '../drivers/driver-target.ts';
import type { EdgeDriver } from '../drivers/edge-driver.ts';
import { EdgeAgent } from '../fanout/edge-agent.ts';
import { agentRegistry } from '../observability/node-metrics.ts';
import { systemClock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { startNodeEndpoints } from './node-endpoints.ts';

export interface RunningAgent {
  readonly node: NodeConfig;
  readonly driver: EdgeDriver;
  readonly target: DriverTarget;
  readonly agent: EdgeAgent;
  /** Port of /metrics, /healthz and /readyz (`metrics.listen`), when the node has one. */
  readonly metricsPort: number | undefined;
  close(): Promise<void>;
}

/**
 * Drivers by type, loaded when a node uses one (STYLE 4): a Varnish node never loads the nginx code.
 * `baseDir` resolves relative paths in the driver config (the config file's folder).
 */
export const DRIVERS: { readonly [T in DriverConfig['type']]: (c: Extract<DriverConfig, { type: T }>, logger: Logger, baseDir: string) => Promise<EdgeDriver> } = {
  varnish: async (c, logger, baseDir) => {
    const { VarnishDriver } = await import('../drivers/varnish/varnish-driver.ts');
    return new VarnishDriver({ url: c.url, admin: c.admin, adminSecretFile: resolve(baseDir, c.secretFile), logger, ...(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {}) });
  },
  nginx: async (c, logger, baseDir) => {
    const { NginxDriver } = await import('../drivers/nginx/nginx-driver.ts');
    return new NginxDriver({
      cacheUrl: c.url,
      purgeUrl: c.purgeUrl,
      cacheDir: resolve(baseDir, c.cacheDir),
      levels: c.levels,
      invalidate: c.invalidate,
      logger,
      ...(c.secret ? { secret: c.secret } : {}),
      ...(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {}),
    });
  },
};

function makeDriver(c: DriverConfig, logger: Logger, baseDir: string): Promise<EdgeDriver> {
  return c.type === 'varnish' ? DRIVERS.varnish(c, logger, baseDir) : DRIVERS.nginx(c, logger, baseDir);
}

/** The applied seq saved by a previous run; 0 (start at the log's end, emptying the cache) when there is none. */
function readSeq(path: string): number {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}

/** Written after the cache applied it, via a rename: a crash leaves the old or the new value, never less than true. */
function writeSeq(path: string, seq: number): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${seq}\n`);
  renameSync(tmp, path);
}

/** Starts the agent of node `nodeId`; `baseDir` is the config file's folder. */
export async function startAgent(config: Readonly<Config>, nodeId: string, logger: Logger, opts: { baseDir: string; controlPlane?: string | readonly string[]; metricsListen?: string }): Promise<RunningAgent> {
  const node = config.nodes.find((n) => n.id === nodeId);
  if (!node) throw new Error(`no node "${nodeId}" in the config's nodes list (have: ${config.nodes.map((n) => n.id).join(', ') || 'none'})`);
  if (!node.driver) throw new Error(`node "${nodeId}" has no driver: it is a built-in edge, run \`edgepurge edge --node ${nodeId}\``);
  const statePath = resolve(opts.baseDir, node.stateFile ?? `./data/agent-${node.id}.seq`);
  let saved = readSeq(statePath);
  // Written once now, so that an agent that cannot keep its position fails at start, before it touches the cache.
  try {
    mkdirSync(dirname(statePath), { recursive: true });
    writeSeq(statePath, saved);
  } catch (err) {
    throw new ConfigError(`for node ${node.id}`, [
      `stateFile: the agent cannot write ${statePath} (${(err as NodeJS.ErrnoException).code ?? String(err)}); ` +
        `point it at a directory the user the agent runs as may write, e.g. stateFile: /var/lib/edgepurge/agent-${node.id}.seq`,
    ]);
  }
  const driver = await makeDriver(node.driver, logger, opts.baseDir);
  await driver.start();
  let agent: EdgeAgent | undefined;
  let saveTimer: NodeJS.Timeout | undefined;
  const target = new DriverTarget({
    driver,
    clock: systemClock,
    logger,
    nodeId,
    appliedSeq: saved,
    onApplied: () => {
      agent?.nudge();
      // At most ten writes a second; the file may lag the cache, never lead it.
      saveTimer ??= setTimeout(() => {
        saveTimer = undefined;
        try {
          if (target.appliedSeq > saved) writeSeq(statePath, (saved = target.appliedSeq));
        } catch (err) {
          // The file lags the cache (allowed: a restart re-applies, never skips); the next apply tries again.
          logger.error('agent state file not written', { path: statePath, err: (err as Error).message });
        }
      }, 100);
    },
  });
  agent = new EdgeAgent({
    controlPlane: opts.controlPlane ?? node.controlPlane ?? `http://${config.server.listen}`,
    nodeId: node.id,
    token: node.token,
    target,
    clock: systemClock,
    logger,
  });
  agent.start();
  const endpoints = await startNodeEndpoints(
    config,
    node,
    () => agentRegistry(node.id, () => ({ ...target.status(), connected: agent.connected, failovers: agent.failovers })),
    () => ({ connected: agent.connected, leaseFresh: systemClock.now() <= target.status().leaseUntil }),
    opts.metricsListen,
  ).catch(async (e: unknown) => {
    await agent.close();
    await target.close();
    await driver.close();
    throw e;
  });
  let closing: Promise<void> | undefined;
  return {
    node,
    driver,
    target,
    agent,
    metricsPort: endpoints?.port,
    close: () =>
      (closing ??= (async () => {
        await endpoints?.close();
        await agent.close();
        await target.close();
        clearTimeout(saveTimer);
        if (target.appliedSeq > saved) writeSeq(statePath, target.appliedSeq);
        await driver.close();
      })()),
  };
}
