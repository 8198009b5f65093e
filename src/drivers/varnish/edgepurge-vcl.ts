// The VCL an operator includes in front of their own (edgepurge.vcl next to this file), for
// `edgepurge agent vcl` to print and the driver to check against.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The protocol version the VCL answers in X-EdgePurge-Vcl; the driver refuses any other. */
// 2: URL deletes no longer use purge.hard() (a purged copy could be revalidated back, before Varnish 7.5).
// 3: objects carry one ban header, X-EdgePurge-Key "<host> <path>", instead of X-EdgePurge-Host and -Url
//    (cheaper hits); the driver bans objects stored with the old headers when it starts.
export const EDGEPURGE_VCL_VERSION = '3';

/** Where the VCL file is in the package (include it from here, or copy it next to your VCL). */
export const EDGEPURGE_VCL_PATH: string = fileURLToPath(new URL('./edgepurge.vcl', import.meta.url));

/** The text of edgepurge.vcl. */
export function edgepurgeVcl(): string {
  return readFileSync(EDGEPURGE_VCL_PATH, 'utf8');
}
