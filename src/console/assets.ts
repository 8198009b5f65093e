// The console's static files (no build step, nothing from a CDN): read once at start, served under
// /console/assets/ with content-hashed URLs so browsers cache them for good and never revalidate.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const TYPES: Readonly<Record<string, string>> = {
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

export type AssetName = 'console.css' | 'console.js' | 'favicon.svg';

export interface Asset {
  readonly body: Buffer;
  readonly type: string;
  /** A hash of the content: the ETag, and the `v` of the URL pages link to. */
  readonly version: string;
}

export const ASSETS: ReadonlyMap<string, Asset> = new Map(
  Object.entries(TYPES).map(([name, type]) => {
    const body = readFileSync(join(import.meta.dirname, 'assets', name));
    return [name, { body, type, version: createHash('sha256').update(body).digest('base64url').slice(0, 16) }];
  }),
);

/** The URL a page links to: changes whenever the file does. */
export const assetUrl = (name: AssetName): string => `/console/assets/${name}?v=${ASSETS.get(name)!.version}`;
