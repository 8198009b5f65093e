// The webhook signature (docs/webhooks.md), in the manner of Stripe's: HMAC-SHA256 over "t.rawBody".
import { createHmac } from 'node:crypto';

export const SIGNATURE_HEADER = 'EdgePurge-Signature';
export const EVENT_ID_HEADER = 'EdgePurge-Event-Id';
export const EVENT_HEADER = 'EdgePurge-Event';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`: the timestamp is signed, so a replay can be dated. */
export function signatureHeader(secret: string, unixSeconds: number, body: string): string {
  const t = Math.floor(unixSeconds);
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}
