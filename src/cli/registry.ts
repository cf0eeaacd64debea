/**
 * The registry client as commands get it: URL and token from ctx.config (the one precedence rule:
 * --registry/--token > IQP_REGISTRY/IQP_TOKEN > config file), retry pacing from IQP_RETRY_BASE_MS,
 * the JSON answers' deadline from json_timeout_ms, debug lines and retry notes through Output. A
 * missing token fails here, before any request.
 */
import { IqpError } from '../errors.js';
import { RegistryClient } from '../client/registry.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../client/retry.js';
import type { Context } from './context.js';

function retryPolicy(ctx: Context): RetryPolicy {
  const baseMs = ctx.config.retryBaseMs;
  return { ...DEFAULT_RETRY, baseMs, maxMs: Math.max(baseMs, DEFAULT_RETRY.maxMs) };
}

export function registryClient(ctx: Context, needs: { token: boolean }): RegistryClient {
  const { registry, token } = ctx.config;
  if (registry === null) throw new IqpError('IQP_E_REGISTRY_REQUIRED');
  if (needs.token && !token) throw new IqpError('IQP_E_TOKEN_REQUIRED');
  return new RegistryClient({
    baseUrl: registry,
    token: token || null,
    retry: retryPolicy(ctx),
    jsonTimeoutMs: ctx.config.jsonTimeoutMs,
    debug: (line) => ctx.out.debug(line),
    onRetry: (message) => ctx.out.note(message),
  });
}

/** Runs `fn` with a client and closes its connections afterwards, so the process can exit at once. */
export async function withRegistry<T>(ctx: Context, needs: { token: boolean }, fn: (client: RegistryClient) => Promise<T>): Promise<T> {
  const client = registryClient(ctx, needs);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
