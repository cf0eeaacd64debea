/** Every core route with the prefix it is mounted under: what server/app.ts mounts and scripts/openapi.ts documents. */
import type { RouteSpec } from '../route.js';
import { ADMIN_ROUTES } from './admin.js';
import { PACK_ROUTES } from './packs.js';
import { ADMIN_RELEASE_ROUTES, PUBLIC_RELEASE_ROUTES } from './releases.js';

export interface RouteGroup {
  readonly prefix: string;
  readonly routes: readonly RouteSpec[];
  /** Set for a plugin's routes: its id and what it does (its tag in the OpenAPI document). */
  readonly plugin?: { readonly id: string; readonly description?: string };
}

export const CORE_ROUTES: readonly RouteGroup[] = [
  { prefix: '/v1', routes: [...PACK_ROUTES, ...PUBLIC_RELEASE_ROUTES] },
  { prefix: '/v1/admin', routes: [...ADMIN_ROUTES, ...ADMIN_RELEASE_ROUTES] },
];
