// /metrics, /healthz and /readyz of a node's process (`edgepurge edge`, `edgepurge agent`), on the
// node's `metrics.listen` address: the edge's own listener proxies every path to the origin.
import type { Registry } from 'prom-client';
import type { Config, NodeConfig } from '../config/schema.ts';
import { operatorRoutes, startOperatorServer, type OperatorServer, type ReadyCheck } from '../observability/endpoints.ts';

/** What a node's readiness rests on: its stream to the control plane, and a fresh lease (granted only once caught up). */
export interface NodeReadiness {
  readonly connected: boolean;
  readonly leaseFresh: boolean;
}

export function nodeReadyChecks(r: NodeReadiness): ReadyCheck[] {
  return [
    { name: 'connected to the control plane', problem: r.connected ? undefined : 'no purge-log stream open (see the log for why)' },
    { name: 'caught up with the purge log', problem: r.leaseFresh ? undefined : 'no fresh lease: the control plane has not seen this node apply the log up to its end' },
  ];
}

/** Starts the node's operator listener when the config gives it one (`nodes[].metrics.listen`); `listen` overrides it. */
export async function startNodeEndpoints(
  config: Readonly<Config>,
  node: NodeConfig,
  registry: () => Registry,
  readiness: () => NodeReadiness,
  listen = node.metrics?.listen,
): Promise<OperatorServer | undefined> {
  if (listen === undefined) return undefined;
  return startOperatorServer(
    listen,
    operatorRoutes({
      ...(config.metrics.enabled ? { registry: registry() } : {}),
      token: () => config.metrics.token,
      ready: async () => nodeReadyChecks(readiness()),
    }),
  );
}
