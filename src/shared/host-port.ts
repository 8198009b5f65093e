// Host names and "host:port" addresses: listen addresses as written in edgepurge.yaml (IPv6 hosts in
// brackets), and the canonical form under which caches and purge targets name a host.

export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

/**
 * The canonical host of a cache key: lower case, without port or trailing dot (nginx's `$host` too).
 * Domains, Host headers and purge targets all go through this, so `Example.COM:8080` and
 * `http://example.com/` name one host.
 */
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
