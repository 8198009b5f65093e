// EdgeOne DescribePrefetchTasks (TENCENT-API §4.4).
import type { ActionHandler } from '../context.ts';
import { describeTasks, PREFETCH_KIND } from './task-query.ts';

export const describePrefetchTasks: ActionHandler = (ctx, params) => describeTasks(ctx, params, PREFETCH_KIND);
