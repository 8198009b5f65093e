// Loading and validating edgepurge.yaml: every problem reported in one error, the result frozen.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { configSchema, type Config } from './schema.ts';

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`invalid configuration ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
    this.name = 'ConfigError';
  }
}

/** Validates an already-parsed object; throws ConfigError listing every problem. */
export function parseConfig(input: unknown, source = '(inline)'): Readonly<Config> {
  const result = configSchema.safeParse(input ?? {});
  const problems = result.success
    ? []
    : result.error.issues.map((i) => {
        const where = i.path.length ? i.path.join('.') : '(root)';
        return `${where}: ${i.message}`;
      });
  // Cross-checks run on the raw input too when the schema failed: one message lists every problem.
  problems.push(...crossCheck(result.success ? result.data : input));
  if (!result.success || problems.length) throw new ConfigError(source, problems);
  return deepFreeze(result.data);
}

export function loadConfigFile(path: string): Readonly<Config> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, [`cannot read the file: ${(e as Error).message}`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(path, [`not valid YAML: ${(e as Error).message}`]);
  }
  return parseConfig(doc, path);
}

type Loose = Record<string, unknown>;
const obj = (v: unknown): Loose => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Loose) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const key = (v: unknown): string | undefined => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);

/**
 * Rules a schema cannot express: uniqueness across accounts, node host references, quota sanity.
 * Reads loosely, so it also works on raw input that failed the schema (missing parts are skipped).
 */
function crossCheck(input: unknown): string[] {
  const problems: string[] = [];
  const seen = (kind: string) => {
    const map = new Map<string, string>();
    return (value: unknown, where: string) => {
      const k = key(value);
      if (k === undefined) return;
      const prev = map.get(k);
      if (prev) problems.push(`${where}: duplicate ${kind} "${k}" (also at ${prev})`);
      else map.set(k, where);
    };
  };
  const appIds = seen('appId');
  const secretIds = seen('secretId');
  const zoneIds = seen('zoneId');
  const hosts = seen('domain host');
  const nodeIds = seen('node id');
  const listenAddresses = seen('listen address');
  // Port 0 picks a free port at start: two of them never collide.
  const listens = (value: unknown, where: string) => (/:0$/.test(key(value) ?? '') ? undefined : listenAddresses(value, where));
  const config = obj(input);
  listens(obj(config.server).listen, 'server.listen');
  const allHosts = new Set<string>();
  list(config.accounts).forEach((raw, ai) => {
    const a = obj(raw);
    appIds(a.appId, `accounts.${ai}.appId`);
    list(a.credentials).forEach((c, ci) => secretIds(obj(c).secretId, `accounts.${ai}.credentials.${ci}.secretId`));
    for (const [type, raw] of Object.entries(obj(a.quotas))) {
      const q = obj(raw);
      if (typeof q.batch === 'number' && typeof q.daily === 'number' && q.batch > q.daily) {
        problems.push(`accounts.${ai}.quotas.${type}: batch (${q.batch}) exceeds daily (${q.daily})`);
      }
    }
    const hookUrls = seen('webhook url');
    list(a.webhooks).forEach((w, wi) => hookUrls(obj(w).url, `accounts.${ai}.webhooks.${wi}.url`));
    list(a.zones).forEach((rawZone, zi) => {
      const z = obj(rawZone);
      zoneIds(z.zoneId, `accounts.${ai}.zones.${zi}.zoneId`);
      list(z.domains).forEach((d, di) => {
        const host = key(obj(d).host)?.toLowerCase();
        hosts(host, `accounts.${ai}.zones.${zi}.domains.${di}.host`);
        if (host !== undefined) allHosts.add(host);
      });
    });
  });
  list(config.nodes).forEach((raw, ni) => {
    const n = obj(raw);
    nodeIds(n.id, `nodes.${ni}.id`);
    listens(n.listen, `nodes.${ni}.listen`);
    listens(obj(n.metrics).listen, `nodes.${ni}.metrics.listen`);
    // A node is either the built-in edge (it listens) or a cache driven by an agent (it has a driver).
    if (n.listen === undefined && n.driver === undefined) problems.push(`nodes.${ni}: needs "listen" (the built-in edge) or "driver" (a cache purged by \`edgepurge agent\`)`);
    if (n.listen !== undefined && n.driver !== undefined) problems.push(`nodes.${ni}: has both "listen" and "driver"; a node is the built-in edge or an agent's cache, not both`);
    list(n.hosts).forEach((h, hi) => {
      const host = key(h)?.toLowerCase();
      if (host !== undefined && !allHosts.has(host)) problems.push(`nodes.${ni}.hosts.${hi}: "${host}" is not a configured domain`);
    });
  });
  return problems;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
