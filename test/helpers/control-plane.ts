// Test harness: a real control plane on a free port with a temp SQLite store and two tenants.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ControlPlane, type ControlPlaneOptions } from '../../src/server/control-plane.ts';
import { systemClock, type Clock } from '../../src/shared/clock.ts';
import { silentLogger, type Logger } from '../../src/shared/logger.ts';
import { SqliteTaskStore } from '../../src/store/sqlite/sqlite-task-store.ts';
import type { TaskStore } from '../../src/store/task-store.ts';

// The SDKs route every request through a proxy when http_proxy is set (TENCENT-API §5.1).
for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY']) delete process.env[k];

export const ACME = {
  appId: 1250000001,
  secretId: 'AKIDacme0000000000000000000000000001',
  secretKey: 'acmeSecretKey0000000000000000001',
  zoneId: 'zone-acme0001',
  zoneId2: 'zone-acme0002',
  host: 'www.acme.com',
  host2: 'img.acme.com',
  host3: 'shop.acme.org',
} as const;

export const GLOBEX = {
  appId: 1250000002,
  secretId: 'AKIDglobex00000000000000000000000002',
  secretKey: 'globexSecretKey000000000000000002',
  zoneId: 'zone-globex01',
  host: 'www.globex.com',
} as const;

export function baseConfig(origin = 'http://127.0.0.1:9'): ConfigInput {
  return {
    server: { listen: '127.0.0.1:0' },
    accounts: [
      {
        appId: ACME.appId,
        name: 'acme',
        credentials: [{ secretId: ACME.secretId, secretKey: ACME.secretKey }],
        zones: [
          { zoneId: ACME.zoneId, name: 'acme.com', domains: [{ host: ACME.host, origin }, { host: ACME.host2, origin }] },
          { zoneId: ACME.zoneId2, name: 'acme.org', domains: [{ host: ACME.host3, origin }] },
        ],
      },
      {
        appId: GLOBEX.appId,
        name: 'globex',
        credentials: [{ secretId: GLOBEX.secretId, secretKey: GLOBEX.secretKey }],
        zones: [{ zoneId: GLOBEX.zoneId, name: 'globex.com', domains: [{ host: GLOBEX.host, origin }] }],
      },
    ],
  };
}

/** A control plane on a started store, and how to close both. */
export interface RunningControlPlane<S extends TaskStore> {
  readonly port: number;
  readonly endpoint: string;
  readonly url: string;
  readonly controlPlane: ControlPlane;
  readonly store: S;
  close(): Promise<void>;
}

export interface ControlPlaneTestOptions {
  clock?: Clock;
  heartbeatMs?: number;
  logger?: Logger;
  console?: ControlPlaneOptions['console'];
}

/**
 * Starts `store` and a control plane on it (whatever the store's engine); closing stops both, then runs
 * `cleanup`. Cleanup is registered on `t` before the caller's first assertion (STYLE 14).
 */
export async function startOnStore<S extends TaskStore & { start(): Promise<void>; close(): Promise<void> }>(
  t: Pick<TestContext, 'after'> | undefined,
  config: Config,
  store: S,
  opts: ControlPlaneTestOptions = {},
  cleanup: () => void = () => {},
): Promise<RunningControlPlane<S>> {
  await store.start();
  const controlPlane = new ControlPlane({ config, store, clock: opts.clock ?? systemClock, logger: opts.logger ?? silentLogger, ...(opts.heartbeatMs ? { heartbeatMs: opts.heartbeatMs } : {}), ...(opts.console ? { console: opts.console } : {}) });
  const { port } = await controlPlane.start();
  let closed: Promise<void> | undefined;
  const server: RunningControlPlane<S> = {
    port,
    endpoint: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    controlPlane,
    store,
    close: () =>
      (closed ??= (async () => {
        await controlPlane.close();
        await store.close();
        cleanup();
      })()),
  };
  t?.after(() => server.close());
  return server;
}

export interface TestServer extends RunningControlPlane<SqliteTaskStore> {
  readonly dir: string;
}

/** Starts a control plane on a temp SQLite store (removed on close unless `opts.dir` is given). */
export async function startControlPlane(
  t: Pick<TestContext, 'after'> | undefined,
  input: ConfigInput = baseConfig(),
  opts: ControlPlaneTestOptions & { dir?: string } = {},
): Promise<TestServer> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'edgepurge-test-'));
  const config = parseConfig({ ...input, store: { driver: 'sqlite', path: join(dir, 'edgepurge.db') } });
  const store = new SqliteTaskStore({ path: join(dir, 'edgepurge.db') });
  const server = await startOnStore(t, config, store, opts, () => {
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
  });
  return { ...server, dir };
}
