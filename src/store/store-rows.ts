// Row shapes every SQL backend shares (same column names) and their mapping to records.
import type { JobRecord, JobSource, Method, TaskRecord, TaskStatus, TaskType } from '../purge/types.ts';

export interface JobRow {
  job_id: string;
  app_id: number;
  zone_id: string;
  type: string;
  method: string;
  created_at: number;
  secret_id: string;
  client_ip: string;
  source: string;
  task_count: number;
}

export interface TaskRow {
  id: number;
  job_id: string;
  app_id: number;
  zone_id: string;
  type: string;
  method: string;
  target: string;
  hosts: string | string[];
  status: string;
  fail_type: string | null;
  fail_message: string | null;
  created_at: number;
  updated_at: number;
  seq: number | null;
}

export const TASK_COLS =
  'id, job_id, app_id, zone_id, type, method, target, hosts, status, fail_type, fail_message, created_at, updated_at, seq';
export const taskCols = (alias: string): string =>
  TASK_COLS.split(', ').map((c) => `${alias}.${c}`).join(', ');

export function toJob(r: JobRow): JobRecord {
  return {
    jobId: r.job_id,
    appId: r.app_id,
    zoneId: r.zone_id,
    type: r.type as TaskType,
    method: r.method as Method,
    createdAt: r.created_at,
    secretId: r.secret_id,
    clientIp: r.client_ip,
    source: r.source as JobSource,
    taskCount: r.task_count,
  };
}

export function toTask(r: TaskRow): TaskRecord {
  return {
    id: r.id,
    jobId: r.job_id,
    appId: r.app_id,
    zoneId: r.zone_id,
    type: r.type as TaskType,
    method: r.method as Method,
    target: r.target,
    // SQLite keeps the list as JSON text, PostgreSQL as text[].
    hosts: typeof r.hosts === 'string' ? (JSON.parse(r.hosts) as string[]) : r.hosts,
    status: r.status as TaskStatus,
    failType: r.fail_type,
    failMessage: r.fail_message,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    seq: r.seq,
  };
}
