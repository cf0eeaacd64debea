/** What every route file needs to mount its declared routes: the registry's ajv and mountRoute's options. */
import { Router } from 'express';
import type { Ajv } from 'ajv';
import type { RouteSpec } from '../../src/api/route.js';
import { type ContractHandler, type MountOptions, mountRoute } from '../http/contract.js';

export interface RouteContract {
  readonly ajv: Ajv;
  readonly options: MountOptions;
}

export type Mount = <R extends RouteSpec>(spec: R, handler: ContractHandler<R>) => void;

/** A router and the function that mounts declared routes on it. */
export function declaredRouter(contract: RouteContract): { router: Router; mount: Mount } {
  const router = Router();
  return { router, mount: (spec, handler) => mountRoute(router, contract.ajv, spec, handler, contract.options) };
}

/** Admin reads and every error: never cached. */
export const NO_STORE = { 'Cache-Control': 'no-store' } as const;
