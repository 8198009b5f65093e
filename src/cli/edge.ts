// `edgepurge edge`: one edge node — the built-in caching proxy, fed by the purge log of the control plane.
import type { Config, NodeConfig } from '../config/schema.ts';
import { EdgeProxy } from '../edge/edge-proxy.ts';
import { EdgeAgent } from '../fanout/edge-agent.ts';
import { edgeRegistry } from '../observability/node-metrics.ts';
import { Directory } from '../purge/directory.ts';
import { systemClock } from '../shared/clock.ts';
import { splitHostPort } from '../shared/host-port.ts';
import type { Logger } from '../shared/logger.ts';
import { startNodeEndpoints } from './node-endpoints.ts';

export interface RunningEdge {
  readonly node: NodeConfig;
  /** The address it listens on (host:port as configured). */
  readonly listen: string;
  readonly port: number;
  readonly proxy: EdgeProxy;
  readonly agent: EdgeAgent;
  /** Port of /metrics, /healthz and /readyz (`metrics.listen`), when the node has one. */
  readonly metricsPort: number | undefined;
  close(): Promise<void>;
}

/** Starts node `nodeId` of `config`; `controlPlane` overrides where it finds the control plane. */
export async function startEdgeNode(config: Readonly<Config>, nodeId: string, logger: Logger, opts: { controlPlane?: string | readonly string[]; listen?: string; metricsListen?: string } = {}): Promise<RunningEdge> {
  const node = config.nodes.find((n) => n.id === nodeId);
  if (!node) throw new Error(`no node "${nodeId}" in the config's nodes list (have: ${config.nodes.map((n) => n.id).join(', ') || 'none'})`);
  const listen = opts.listen ?? node.listen;
  if (listen === undefined) throw new Error(`node "${nodeId}" has a ${node.driver?.type ?? 'cache'} driver: run \`edgepurge agent --node ${nodeId}\` beside that cache instead`);
  const domains = new Directory(config).domainsFor(node);
  const proxy = new EdgeProxy({
    listen: splitHostPort(listen),
    domains,
    maxBytes: node.cacheBytes,
    clock: systemClock,
    leaseMs: config.fanout.leaseMs,
    connections: node.connections,
    onError: (err, context) => logger.warn('edge error', { node: node.id, context, error: err }),
  });
  const { port } = await proxy.start();
  const agent = new EdgeAgent({
    controlPlane: opts.controlPlane ?? node.controlPlane ?? `http://${config.server.listen}`,
    nodeId: node.id,
    token: node.token,
    target: proxy,
    clock: systemClock,
    logger,
  });
  agent.start();
  const endpoints = await startNodeEndpoints(
    config,
    node,
    () => edgeRegistry(node.id, () => ({ ...proxy.stats(), connected: agent.connected, failovers: agent.failovers })),
    () => ({ connected: agent.connected, leaseFresh: proxy.leaseFresh() }),
    opts.metricsListen,
  ).catch(async (e: unknown) => {
    await agent.close();
    await proxy.close();
    throw e;
  });
  let closing: Promise<void> | undefined;
  return {
    node,
    listen,
    port,
    proxy,
    agent,
    metricsPort: endpoints?.port,
    close: () =>
      (closing ??= (async () => {
        await endpoints?.close();
        await agent.close();
        await proxy.close();
      })()),
  };
}
