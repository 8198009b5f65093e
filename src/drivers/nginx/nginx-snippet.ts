// The nginx configuration the driver relies on, as text: the shipped edgepurge.conf is exactly
// nginxSnippet() with its defaults (test/drivers/nginx-cache-file.test.ts keeps the two in step), and
// a CLI command can print it with the operator's own zone, address and secret.

export interface SnippetOptions {
  /** keys_zone name of the operator's proxy_cache_path. */
  readonly zone?: string;
  /** Where the purge server listens; keep it on loopback or a private address. */
  readonly listen?: string;
  /** Addresses allowed to purge (the agent's). */
  readonly allow?: readonly string[];
  /** When set, purges must also carry `X-EdgePurge-Secret: <secret>`. */
  readonly secret?: string;
}

export const SNIPPET_DEFAULTS = Object.freeze({ zone: 'edgepurge', listen: '127.0.0.1:8079', allow: ['127.0.0.1', '::1'] });

/** The header the driver puts the exact cache key in (exact bytes: a URI would be normalised by nginx). */
export const PURGE_KEY_HEADER = 'x-edgepurge-key';
export const SECRET_HEADER = 'x-edgepurge-secret';
/** Sent by the purge location on every answer, so the driver can tell "not cached" from "no snippet". */
export const MARKER_HEADER = 'x-edgepurge-purge';
export const PURGE_PATH = '/edgepurge/purge';

const SAFE = /^[A-Za-z0-9._:[\]/-]+$/;

/** The snippet for the `http {}` block, after the operator's proxy_cache_path. */
export function nginxSnippet(options: SnippetOptions = {}): string {
  const zone = options.zone ?? SNIPPET_DEFAULTS.zone;
  const listen = options.listen ?? SNIPPET_DEFAULTS.listen;
  const allow = options.allow ?? SNIPPET_DEFAULTS.allow;
  for (const v of [zone, listen, ...allow]) {
    if (!SAFE.test(v)) throw new TypeError(`"${v}" is not a plain nginx token`);
  }
  if (options.secret !== undefined && !/^[A-Za-z0-9_-]{16,}$/.test(options.secret)) {
    throw new TypeError('the purge secret must be at least 16 letters, digits, "-" or "_"');
  }
  const secret =
    options.secret === undefined
      ? ''
      : `\n    # Purges must also carry the agent's secret.\n    if ($http_x_edgepurge_secret != "${options.secret}") { return 403; }\n`;
  return `# EdgePurge: nginx cache purging by the edgepurge agent (src/drivers/nginx/README.md).
# Include inside http {}, after your proxy_cache_path (keys_zone=${zone}, levels=1:2).

# The agent's index reads host and path back from each cache file's KEY line, so the key must be
# exactly this. A proxy_cache_key set in a server or location overrides it: remove that one.
proxy_cache_key $scheme://$host$request_uri;

# Cache-Tag / Surrogate-Key stay in the stored response (tag purges read them from the cache file);
# this only hides them from clients. A location with its own proxy_hide_header must repeat these.
proxy_hide_header Cache-Tag;
proxy_hide_header Surrogate-Key;

# The purge endpoint, for the agent only. The agent sends the exact key in X-EdgePurge-Key.
server {
    listen ${listen};
    server_name edgepurge-purge;
    access_log off;
${allow.map((a) => `    allow ${a};\n`).join('')}    deny all;
${secret}
    location = ${PURGE_PATH} {
        add_header X-EdgePurge-Purge 1 always;
        proxy_cache_purge ${zone} $http_x_edgepurge_key;
    }

    location / {
        return 404;
    }
}
`;
}
