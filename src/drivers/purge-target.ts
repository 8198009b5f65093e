// How drivers read purge-log targets: the same canonical host and path+query the built-in edge keys
// objects by (src/edge/cache-key.ts); the host rule itself is shared (src/shared/host-port.ts).
import { canonicalHost } from '../shared/host-port.ts';

export { canonicalHost };

/** A URL target split into canonical host and WHATWG-normalised path + query; undefined when not a URL. */
export function parseTargetUrl(target: string): { readonly host: string; readonly path: string } | undefined {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    return undefined;
  }
  if (u.host === '' || !/^https?:$/.test(u.protocol)) return undefined;
  return { host: canonicalHost(u.host), path: u.pathname + u.search };
}

/** purge_host's host: the target (a host name, or tolerated as a URL), else the command's hosts. */
export function purgeHostTargets(target: string, hosts: readonly string[]): string[] {
  const host = target.includes('://') ? parseTargetUrl(target)?.host : target.trim() === '' ? undefined : canonicalHost(target);
  return host === undefined || host === '' ? hosts.map(canonicalHost) : [host];
}
