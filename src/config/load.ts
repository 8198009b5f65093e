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
  if (!result.success) {
    const problems = result.error.issues.map((i) => {
      const where = i.path.length ? i.path.join('.') : '(root)';
      return `${where}: ${i.message}`;
    });
    throw new ConfigError(source, problems);
  }
  const config = result.data;
  const problems = crossCheck(config);
  if (problems.length) throw new ConfigError(source, problems);
  return deepFreeze(config);
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

/** Rules a schema cannot express: uniqueness across accounts, node host references, quota sanity. */
function crossCheck(config: Config): string[] {
  const problems: string[] = [];
  const seen = (kind: string) => {
    const map = new Map<string, string>();
    return (key: string, where: string) => {
      const prev = map.get(key);
      if (prev) problems.push(`${where}: duplicate ${kind} "${key}" (also at ${prev})`);
      else map.set(key, where);
    };
  };
  const appIds = seen('appId');
  const secretIds = seen('secretId');
  const zoneIds = seen('zoneId');
  const hosts = seen('domain host');
  const nodeIds = seen('node id');
  const listens = seen('listen address');
  listens(config.server.listen, 'server.listen');
  config.accounts.forEach((a, ai) => {
    appIds(String(a.appId), `accounts.${ai}.appId`);
    a.credentials.forEach((c, ci) => secretIds(c.secretId, `accounts.${ai}.credentials.${ci}.secretId`));
    for (const [type, q] of Object.entries(a.quotas)) {
      if (q && q.batch > q.daily) problems.push(`accounts.${ai}.quotas.${type}: batch (${q.batch}) exceeds daily (${q.daily})`);
    }
    a.zones.forEach((z, zi) => {
      zoneIds(z.zoneId, `accounts.${ai}.zones.${zi}.zoneId`);
      z.domains.forEach((d, di) => hosts(d.host, `accounts.${ai}.zones.${zi}.domains.${di}.host`));
    });
  });
  const allHosts = new Set(config.accounts.flatMap((a) => a.zones.flatMap((z) => z.domains.map((d) => d.host))));
  config.nodes.forEach((n, ni) => {
    nodeIds(n.id, `nodes.${ni}.id`);
    listens(n.listen, `nodes.${ni}.listen`);
    n.hosts?.forEach((h, hi) => {
      if (!allHosts.has(h)) problems.push(`nodes.${ni}.hosts.${hi}: "${h}" is not a configured domain`);
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
