// The demo origin `edgepurge start` serves: a few cacheable pages with ETags and cache tags, so a
// newcomer can watch MISS → HIT → purge → MISS (and a 304 revalidation after an invalidate).
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Clock } from '../shared/clock.ts';

export async function startDemoOrigin(listen: { host: string; port: number }, clock: Clock): Promise<{ server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    // The body changes every minute so a purge visibly brings fresh content.
    const minute = new Date(Math.floor(clock.now() / 60_000) * 60_000).toISOString();
    const body = `<!doctype html><title>EdgePurge demo</title><p>${path} served by the demo origin, version of ${minute}</p>\n`;
    const etag = `"${createHash('sha1').update(body).digest('hex').slice(0, 16)}"`;
    const section = path.split('/')[1] || 'root';
    const headers = {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'public, max-age=3600',
      ETag: etag,
      'Cache-Tag': `demo,${section}`,
    };
    if (req.headers['if-none-match'] === etag) return void res.writeHead(304, headers).end();
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return { server, close: () => new Promise<void>((r) => server.close(() => r())) };
}
