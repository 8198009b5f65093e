// Which endpoints want a settled job's event: the account's webhooks that subscribe to it.
import type { Config } from '../config/schema.ts';
import type { WebhookRouter } from '../store/task-store.ts';

/** A router over one configuration (the control plane builds one per reload); cheap and synchronous, as the store requires. */
export function webhookRouter(config: Readonly<Config>): WebhookRouter {
  const byApp = new Map(config.accounts.filter((a) => a.webhooks.length > 0).map((a) => [a.appId, a.webhooks]));
  return (job) => (byApp.get(job.appId) ?? []).filter((w) => w.events.includes(job.event)).map((w) => w.url);
}
