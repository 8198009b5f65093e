// Lookups over the configuration: credentials → account, host → domain and zone, nodes per host.
import type { AccountConfig, Config, DomainConfig, NodeConfig, ZoneConfig } from '../config/schema.ts';

export interface HostEntry {
  readonly account: AccountConfig;
  readonly zone: ZoneConfig;
  readonly domain: DomainConfig;
}

export class Directory {
  readonly config: Readonly<Config>;
  readonly #bySecretId = new Map<string, { account: AccountConfig; secretKey: string }>();
  readonly #byHost = new Map<string, HostEntry>();
  readonly #zones = new Map<string, { account: AccountConfig; zone: ZoneConfig }>();
  readonly #nodesByHost = new Map<string, NodeConfig[]>();

  constructor(config: Readonly<Config>) {
    this.config = config;
    for (const account of config.accounts) {
      for (const c of account.credentials) this.#bySecretId.set(c.secretId, { account, secretKey: c.secretKey });
      for (const zone of account.zones) {
        this.#zones.set(zone.zoneId, { account, zone });
        for (const domain of zone.domains) this.#byHost.set(domain.host, { account, zone, domain });
      }
    }
    for (const host of this.#byHost.keys()) {
      this.#nodesByHost.set(host, config.nodes.filter((n) => !n.hosts || n.hosts.includes(host)));
    }
  }

  credential(secretId: string): { account: AccountConfig; secretKey: string } | undefined {
    return this.#bySecretId.get(secretId);
  }

  /** The domain `host` if it belongs to `appId` (DESIGN invariant 7: foreign hosts look absent). */
  host(appId: number, host: string): HostEntry | undefined {
    const e = this.#byHost.get(host.toLowerCase());
    return e && e.account.appId === appId ? e : undefined;
  }

  zone(appId: number, zoneId: string): ZoneConfig | undefined {
    const z = this.#zones.get(zoneId);
    return z && z.account.appId === appId ? z.zone : undefined;
  }

  /** Edge nodes that serve `host`. */
  nodesFor(host: string): readonly NodeConfig[] {
    return this.#nodesByHost.get(host) ?? [];
  }

  /** Every configured domain with its origin (what an edge node proxies). */
  domainsFor(node: NodeConfig): Array<{ host: string; origin: string }> {
    return [...this.#byHost.values()]
      .filter((e) => !node.hosts || node.hosts.includes(e.domain.host))
      .map((e) => ({ host: e.domain.host, origin: e.domain.origin }));
  }
}
