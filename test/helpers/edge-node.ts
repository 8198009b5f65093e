// Runs one configured node as a built-in edge (a real proxy and agent) against a test control plane.
import type { TestContext } from 'node:test';
import { startEdgeNode, type RunningEdge } from '../../src/cli/edge.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/shared/logger.ts';

/**
 * Node `id` of `input`, on a free port, streaming from `controlPlane`. The control plane keeps its own
 * view of the node (an nginx one stays never-fenced); the connection and the acks come from this edge.
 * Listen addresses elsewhere in `input` are only placeholders.
 */
export async function runNodeAsEdge(t: Pick<TestContext, 'after'>, input: ConfigInput, id: string, controlPlane: string): Promise<RunningEdge> {
  const nodes = (input.nodes ?? []).map((n) => (n.id === id ? { id, listen: '127.0.0.1:0', token: n.token, ...(n.hosts ? { hosts: n.hosts } : {}) } : n));
  const edge = await startEdgeNode(parseConfig({ ...input, server: { listen: '127.0.0.1:3' }, nodes }), id, silentLogger, { controlPlane });
  t.after(() => edge.close());
  return edge;
}
