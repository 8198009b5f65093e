// Legacy CDN API v2 actions by name (TENCENT-API §1). Filled in by the legacy-API issue.
import type { ActionHandler } from '../context.ts';

export const V2_ACTIONS: ReadonlyMap<string, ActionHandler> = new Map<string, ActionHandler>([]);
