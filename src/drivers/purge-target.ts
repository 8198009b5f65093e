// How drivers read purge-log targets: the same canonical host and path+query the built-in edge keys
// objects by (src/edge/cache-key.ts), restated here because drivers import only src/shared.

/** Lower case, without port or trailing dot: `Example.COM:8080` and `example.com.` name one host. */
export function canonicalHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end >= 0 ? h.slice(0, end + 1) : h;
  } else {
    const colon = h.lastIndexOf(':');
    if (colon >= 0) h = h.slice(0, colon);
  }
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

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
