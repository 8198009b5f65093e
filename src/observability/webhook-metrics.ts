// Webhook delivery metrics (docs/metrics.md): attempts by result, and the outbox depth read at scrape.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DeliveryResult } from '../webhooks/webhook-dispatcher.ts';

export class WebhookMetrics {
  readonly #attempts: Counter<'result'>;

  /** `depth`: pending deliveries (one count over the store's pending-row index per scrape). */
  constructor(registry: Registry, depth: () => Promise<number>) {
    this.#attempts = new Counter({
      name: 'edgepurge_webhook_deliveries_total',
      help: 'Webhook delivery attempts by result: delivered (2xx), retry (failed, scheduled again), failed (gave up).',
      labelNames: ['result'],
      registers: [registry],
    });
    for (const r of ['delivered', 'retry', 'failed'] as const) this.#attempts.labels(r).inc(0);
    const gauge: Gauge = new Gauge({
      name: 'edgepurge_webhook_outbox_depth',
      help: 'Webhook deliveries pending in the outbox (not yet delivered nor given up), across every replica.',
      registers: [registry],
      collect: async () => gauge.set(await depth()),
    });
  }

  attempt(result: DeliveryResult): void {
    this.#attempts.labels(result).inc();
  }
}
