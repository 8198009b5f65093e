// edgepurge.yaml for `serve` as a child process with one webhook (the kill -9 test and bench): edge-1
// never runs, so it never acked, holds no lease and counts as fenced; every purge settles at the next pass.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acmeAccountsYaml } from '../helpers/serve-process.ts';

/** Writes `dir`/edgepurge.yaml (SQLite store in `dir`) and returns its path; `delivery` is the webhookDelivery YAML. */
export function writeHookConfig(dir: string, url: string, delivery: string): string {
  const path = join(dir, 'edgepurge.yaml');
  writeFileSync(
    path,
    `server: { listen: "127.0.0.1:0", accessLog: false }
store: { driver: sqlite, path: ${JSON.stringify(join(dir, 'edgepurge.db'))} }
webhookDelivery: ${delivery}
nodes: [{ id: edge-1, listen: "127.0.0.1:1", token: node-token-0000000000000000 }]
${acmeAccountsYaml(`webhooks: [{ url: ${JSON.stringify(url)}, secret: whsec-0123456789abcdef }]`)}`,
  );
  return path;
}
