// The webhook outbox's rows as both stores read them, and the event a settled job raises.
import type { WebhookEvent } from '../purge/types.ts';
import { newEventId } from '../shared/ids.ts';
import type { NewJob, WebhookDelivery, WebhookDeliveryStatus, WebhookRouter } from './task-store.ts';

/** The event of a job none of whose tasks is processing: failed beats timeout beats succeeded. */
export function settledEvent(counts: { readonly failed: number; readonly timeout: number }): WebhookEvent {
  if (counts.failed > 0) return 'job.failed';
  return counts.timeout > 0 ? 'job.timeout' : 'job.succeeded';
}

/** An outbox row to insert: [event_id, app_id, job_id, url, event, created_at (= first next_at)]. */
export type NewDelivery = [string, number, string, string, WebhookEvent, number];

/**
 * The outbox rows of a job that createJob settles whole (no task processing: no edge node serves its
 * hosts), for the job's transaction; [] when any task still waits for a node (updateTasks raises it then).
 */
export function settledAtCreation(job: NewJob, webhooks: WebhookRouter | undefined): NewDelivery[] {
  if (!webhooks || job.tasks.some((t) => t.status === 'processing')) return [];
  const count = (s: string): number => job.tasks.filter((t) => t.status === s).length;
  const event = settledEvent({ failed: count('failed'), timeout: count('timeout') });
  return webhooks({ appId: job.appId, jobId: job.jobId, event }).map((url) => [newEventId(), job.appId, job.jobId, url, event, job.createdAt]);
}

export const DELIVERY_COLS =
  'event_id, app_id, job_id, url, event, created_at, status, attempts, next_at, last_status, last_error, last_attempt_at, delivered_at';

/** A row as selected with DELIVERY_COLS; PostgreSQL hands bigints over as strings. */
export interface DeliveryRow {
  event_id: string; app_id: number | string; job_id: string; url: string; event: string; created_at: number | string;
  status: string; attempts: number | string; next_at: number | string; last_status: number | string | null;
  last_error: string | null; last_attempt_at: number | string | null; delivered_at: number | string | null;
}

const numOrNull = (v: number | string | null): number | null => (v === null ? null : Number(v));

export const toDelivery = (r: DeliveryRow): WebhookDelivery => ({
  eventId: r.event_id,
  appId: Number(r.app_id),
  jobId: r.job_id,
  url: r.url,
  event: r.event as WebhookEvent,
  createdAt: Number(r.created_at),
  status: r.status as WebhookDeliveryStatus,
  attempts: Number(r.attempts),
  nextAt: Number(r.next_at),
  lastStatus: numOrNull(r.last_status),
  lastError: r.last_error,
  lastAttemptAt: numOrNull(r.last_attempt_at),
  deliveredAt: numOrNull(r.delivered_at),
});

/** Bounds what a receiver's error text can make us store. */
export const clipError = (s: string | null): string | null => (s === null ? null : s.slice(0, 500));
