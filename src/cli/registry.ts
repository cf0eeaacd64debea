/**
 * The registry client as commands get it: URL and token by the one precedence rule (flag >
 * IQP_REGISTRY / IQP_TOKEN > config file), retry pacing from IQP_RETRY_BASE_MS, debug lines and
 * retry notes through Output. A missing token fails here, before any request.
 */
import { type Command, Option } from 'commander';
import { IqpError, isIqpError } from '../errors.js';
import { RegistryClient } from '../client/registry.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../client/retry.js';
import { httpUrl } from './config.js';
import type { Context } from './context.js';

export interface RegistryFlags {
  registry?: string;
  token?: string;
}

/** Adds --registry, and --token for commands that call admin endpoints. */
export function registryOptions(cmd: Command, withToken: boolean): Command {
  cmd.addOption(new Option('--registry <url>', 'registry base URL (default: IQP_REGISTRY or the config file’s "registry")'));
  if (withToken) {
    cmd.addOption(new Option('--token <token>', 'bearer token (prefer IQP_TOKEN or the config file’s "token": a flag lands in shell history)'));
  }
  return cmd;
}

function retryPolicy(ctx: Context): RetryPolicy {
  const raw = ctx.env['IQP_RETRY_BASE_MS'];
  if (raw === undefined || raw === '') return DEFAULT_RETRY;
  if (!/^\d{1,7}$/.test(raw)) throw new IqpError('IQP_E_CONFIG', `IQP_RETRY_BASE_MS: must be a whole number of milliseconds (got ${JSON.stringify(raw)}).`);
  const baseMs = Number(raw);
  return { ...DEFAULT_RETRY, baseMs, maxMs: Math.max(baseMs, DEFAULT_RETRY.maxMs) };
}

function registryUrl(ctx: Context, flag: string | undefined): string {
  if (flag === undefined) {
    if (ctx.config.registry === null) throw new IqpError('IQP_E_REGISTRY_REQUIRED');
    return ctx.config.registry;
  }
  try {
    return httpUrl(flag, '--registry');
  } catch (err) {
    throw isIqpError(err) ? new IqpError('IQP_E_USAGE', err.message) : err;
  }
}

export function registryClient(ctx: Context, flags: RegistryFlags, needs: { token: boolean }): RegistryClient {
  const baseUrl = registryUrl(ctx, flags.registry);
  const token = flags.token ?? ctx.config.token;
  if (needs.token && !token) throw new IqpError('IQP_E_TOKEN_REQUIRED');
  return new RegistryClient({
    baseUrl,
    token: token || null,
    retry: retryPolicy(ctx),
    debug: (line) => ctx.out.debug(line),
    onRetry: (message) => ctx.out.note(message),
  });
}

/** Runs `fn` with a client and closes its connections afterwards, so the process can exit at once. */
export async function withRegistry<T>(ctx: Context, flags: RegistryFlags, needs: { token: boolean }, fn: (client: RegistryClient) => Promise<T>): Promise<T> {
  const client = registryClient(ctx, flags, needs);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
