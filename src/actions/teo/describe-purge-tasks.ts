// EdgeOne DescribePurgeTasks (TENCENT-API §4.2).
import type { ActionHandler } from '../context.ts';
import { describeTasks, PURGE_KIND } from './task-query.ts';

export const describePurgeTasks: ActionHandler = (ctx, params) => describeTasks(ctx, params, PURGE_KIND);
