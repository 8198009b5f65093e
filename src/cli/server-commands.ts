// The commands that run EdgePurge's processes: start, serve, edge, agent (and the cache configs the
// agent ships). Each keeps running until SIGINT/SIGTERM (exit code -1 to main).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadConfigFile } from '../config/load.ts';
import { systemClock } from '../shared/clock.ts';
import { splitHostPort } from '../shared/host-port.ts';
import { createLogger, type LogLevel } from '../shared/logger.ts';
import { UsageError, type CommandSpec, type OptionSpec, type Values } from './args.ts';
import { normalizeEndpoint } from './client.ts';
import { demoConfig } from './default-config.ts';
// The server side (store, protocols, caches, drivers) loads only for the commands that run it, so a
// client command starts in a fraction of the time.
const startControlPlane = async (...a: Parameters<typeof import('./serve.ts').startControlPlane>) => (await import('./serve.ts')).startControlPlane(...a);
const startEdgeNode = async (...a: Parameters<typeof import('./edge.ts').startEdgeNode>) => (await import('./edge.ts')).startEdgeNode(...a);
const startAgent = async (...a: Parameters<typeof import('./agent.ts').startAgent>) => (await import('./agent.ts')).startAgent(...a);
const startDemoOrigin = async (...a: Parameters<typeof import('./demo-origin.ts').startDemoOrigin>) => (await import('./demo-origin.ts')).startDemoOrigin(...a);

function logLevel(): LogLevel {
  const l = process.env.EDGEPURGE_LOG_LEVEL;
  return l === 'debug' || l === 'info' || l === 'warn' || l === 'error' || l === 'silent' ? l : 'info';
}

const str = (v: Values, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

/**
 * --control-plane: one URL or several replicas' comma-separated, each in any form --endpoint takes (the
 * serve banner's `127.0.0.1:8080` included).
 */
function controlPlaneOf(v: Values): { controlPlane?: string[] } {
  const given = str(v, 'control-plane');
  if (given === undefined) return {};
  const parts = given.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '')) throw new UsageError(`--control-plane: an empty URL in "${given}" (separate several with commas, no empty entries)`);
  try {
    return { controlPlane: parts.map((p) => normalizeEndpoint(p)) };
  } catch (e) {
    throw new UsageError(`--control-plane: ${(e as Error).message}`);
  }
}

/**
 * Ends the process cleanly on SIGINT/SIGTERM, closing what was registered (the last started first).
 * Installed before anything listens: a signal during start-up, once a port is open, must not end the
 * process by the default action in the middle of a write.
 */
function stopOnSignals(): (close: () => Promise<unknown>) => void {
  const closers: Array<() => Promise<unknown>> = [];
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void Promise.all(closers.reverse().map((c) => c())).finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return (close) => {
    // A signal that came while this part was starting: close it too, then the process ends.
    if (stopping) void close();
    else closers.push(close);
  };
}

async function serve(values: Values, writeDemo: boolean): Promise<number> {
  const given = str(values, 'config');
  if (!given && !writeDemo) throw new UsageError('serve needs --config FILE');
  const path = resolve(given ?? 'edgepurge.yaml');
  let demo: ReturnType<typeof demoConfig> | undefined;
  if (writeDemo && !existsSync(path)) {
    demo = demoConfig();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, demo.yaml, { mode: 0o600, flag: 'wx' });
  }
  const config = loadConfigFile(path);
  const logger = createLogger(logLevel());
  const onStop = stopOnSignals();
  const running = await startControlPlane(config, logger, str(values, 'listen'));
  onStop(() => running.close());
  const base = `http://${running.host}:${running.port}`;
  const out: string[] = [`EdgePurge control plane on ${base}  (API 3.0 at /, legacy v2 at /v2/index.php, web console at /console/)`, `config: ${path}`];
  if (writeDemo) {
    // The embedded default: every node of the config in this process, and the demo origin.
    if (config.demo) {
      const origin = await startDemoOrigin(splitHostPort(config.demo.origin), systemClock);
      onStop(() => origin.close());
      out.push(`demo origin on http://${config.demo.origin}`);
    }
    for (const n of config.nodes) {
      if (n.driver !== undefined) {
        out.push(`node ${n.id} (${n.driver.type}): run \`edgepurge agent --config FILE --node ${n.id}\` beside that cache`);
        continue;
      }
      const edge = await startEdgeNode(config, n.id, logger, { controlPlane: base });
      onStop(() => edge.close());
      out.push(`edge node ${n.id} on http://${n.listen}`);
    }
  }
  if (demo) {
    out.push('', 'A demo configuration was written with fresh credentials:', `  SecretId:  ${demo.secretId}`, `  SecretKey: ${demo.secretKey}`, `  endpoint:  ${running.host}:${running.port} (protocol http://)`);
  } else if (writeDemo) {
    out.push('credentials: see the accounts section of the config file');
  }
  const edge = config.nodes.find((n) => n.listen !== undefined);
  const host = config.accounts[0]?.zones[0]?.domains[0]?.host;
  const zone = config.accounts[0]?.zones[0]?.zoneId;
  if (writeDemo && edge && host && zone) {
    const cred = config.accounts[0]!.credentials[0]!;
    out.push(
      '',
      'Try it (in another terminal):',
      `  curl -si -H 'Host: ${host}' http://${edge.listen}/hello.html | grep -i x-cache     # MISS, then HIT`,
      `  export TENCENTCLOUD_SECRET_ID=${cred.secretId} TENCENTCLOUD_SECRET_KEY=${cred.secretKey}`,
      `  ./bin/edgepurge.js purge url http://${host}/hello.html --zone ${zone} --wait`,
      `  curl -si -H 'Host: ${host}' http://${edge.listen}/hello.html | grep -i x-cache     # MISS again`,
    );
  }
  // DESIGN "Declarative configuration": the file is validated again and applied on SIGHUP; a bad
  // file is reported and the running configuration kept.
  process.on('SIGHUP', () => {
    try {
      const next = loadConfigFile(path);
      const notes = running.controlPlane.reload(next);
      if (writeDemo && config.nodes.length) notes.push('edge nodes started by `start` keep their domains and origins until a restart');
      logger.info('configuration reloaded', { config: path, ...(notes.length ? { notes } : {}) });
    } catch (e) {
      logger.error('configuration not reloaded; keeping the running one', { config: path, error: e instanceof Error ? e.message : String(e) });
    }
  });
  // Printed last: whoever waits for this line may signal the process right away.
  process.stdout.write(`${out.join('\n')}\n`);
  return -1;
}

async function edge(values: Values): Promise<number> {
  const [config, node] = [str(values, 'config'), str(values, 'node')];
  if (!config || !node) throw new UsageError('edge needs --config FILE --node ID');
  const where = controlPlaneOf(values);
  const onStop = stopOnSignals();
  const running = await startEdgeNode(loadConfigFile(resolve(config)), node, createLogger(logLevel()), where);
  onStop(() => running.close());
  process.stdout.write(`EdgePurge edge node ${running.node.id} on http://${running.listen.replace(/:\d+$/, '')}:${running.port}\n`);
  return -1;
}

async function agent(values: Values): Promise<number> {
  const [config, node] = [str(values, 'config'), str(values, 'node')];
  if (!config || !node) throw new UsageError('agent needs --config FILE --node ID (or: agent vcl | agent nginx-conf)');
  const file = resolve(config);
  const where = controlPlaneOf(values);
  const onStop = stopOnSignals();
  const running = await startAgent(loadConfigFile(file), node, createLogger(logLevel()), { baseDir: dirname(file), ...where });
  onStop(() => running.close());
  process.stdout.write(`EdgePurge agent for node ${running.node.id} (${running.driver.name}), applied seq ${running.target.appliedSeq}\n`);
  return -1;
}

const CONFIG_FILE: OptionSpec = { type: 'string', arg: 'FILE', help: 'the configuration file (YAML or JSON)' };
const NODE_OPTIONS = {
  config: CONFIG_FILE,
  node: { type: 'string', arg: 'ID', help: 'which entry of the config\'s nodes list this process is' },
  'control-plane': { type: 'string', arg: 'URL[,URL…]', help: 'where the control plane is, as --endpoint; several replicas comma-separated, the node fails over between them (default: the node\'s controlPlane, else http://server.listen)' },
} satisfies Record<string, OptionSpec>;

/** A command that prints a shipped file, loaded only when asked for. */
const printing = (text: () => Promise<string>) => async () => (process.stdout.write(await text()), 0);

const LOG_LEVEL = 'Logs go to stderr; EDGEPURGE_LOG_LEVEL=debug|info|warn|error|silent (default info).';

export const SERVER_COMMANDS: readonly CommandSpec[] = [
  {
    name: 'start',
    args: '',
    summary: 'Run the whole demo: control plane, edge nodes, demo origin.',
    details: `Writes a demo config with fresh credentials if the file is missing, then runs the control plane, every configured built-in edge node and the demo origin in one process. SIGHUP reloads the file. ${LOG_LEVEL}`,
    options: { config: { ...CONFIG_FILE, help: 'the configuration file (default edgepurge.yaml; written if missing)' } },
    run: (v) => serve(v, true),
  },
  {
    name: 'serve',
    args: '',
    summary: 'Run the control plane alone.',
    details: `SIGHUP reloads the file: a file with errors is reported and the running configuration kept. ${LOG_LEVEL}`,
    options: {
      config: CONFIG_FILE,
      listen: { type: 'string', arg: 'HOST:PORT', help: 'listen here instead of server.listen (replicas on one host sharing one config file)' },
    },
    run: (v) => serve(v, false),
  },
  {
    name: 'edge',
    args: '',
    summary: 'Run one built-in edge node (caching proxy + purge log).',
    details: `The caching reverse proxy for every domain the node serves, applying the control plane's purge log. ${LOG_LEVEL}`,
    options: NODE_OPTIONS,
    run: (v) => edge(v),
  },
  {
    name: 'agent',
    args: '',
    summary: "Apply the purge log to a node's Varnish or nginx.",
    details: `For a node with a \`driver\` in the config; run it beside that cache. See also: edgepurge agent vcl, edgepurge agent nginx-conf. ${LOG_LEVEL}`,
    options: NODE_OPTIONS,
    run: (v) => agent(v),
  },
  {
    name: 'agent vcl',
    args: '',
    summary: 'Print the VCL a Varnish includes.',
    details: 'See src/drivers/varnish/README.md.',
    options: {},
    run: printing(async () => (await import('../drivers/varnish/edgepurge-vcl.ts')).edgepurgeVcl()),
  },
  {
    name: 'agent nginx-conf',
    args: '',
    summary: 'Print the nginx snippet the agent needs.',
    details: 'See src/drivers/nginx/README.md.',
    options: {},
    run: printing(async () => (await import('../drivers/nginx/nginx-snippet.ts')).nginxSnippet()),
  },
];
