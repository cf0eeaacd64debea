/**
 * `iqp audit`: the registry's append-only audit log, newest first, read page by page with the admin
 * token from IQP_TOKEN or the config file, so an operator never puts a token on a curl command line.
 */
import { Command } from 'commander';
import type { Context } from '../cli/context.js';
import { printable } from '../cli/output.js';
import { withRegistry } from '../cli/registry.js';
import { intFlag, withSettings } from '../cli/setting-options.js';
import { IqpError } from '../errors.js';
// The entry as the API sends it (types only: nothing of the server is loaded).
import type { AuditEntry } from '../../server/stores/types.js';

interface Options {
  actor?: string;
  action?: string;
  target?: string;
  since?: string;
  limit: number;
}

interface AuditPage {
  readonly entries: AuditEntry[];
  readonly paging: { readonly next_cursor: string | null; readonly has_more: boolean };
}

/** The registry's largest page. */
const PAGE = 500;
/** Entries are held until printed as one result: a bound on memory as much as on the screen. */
const MAX_LIMIT = 10_000;
const SPAN = /^(\d{1,6})(m|h|d)$/;
const SPAN_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function define(): Command {
  return withSettings(
    new Command('audit')
      .description('show the registry’s audit log, newest first: every publish, deprecation, key, token and release change (admin token)')
      .option('--actor <actor>', 'who: token:<id> or a bare token id (whatever its name), or an exact actor such as cli:token')
      .option('--action <action>', 'what: an action such as token.revoke, or a family such as token.*')
      .option('--target <target>', 'about what: key:<id>, token:<id>, release:<id> or <pack id>@<version>')
      .option('--since <time>', 'from this time on: 2026-11-22, 2026-11-22T08:00:00Z, or back from now: 90m, 24h, 7d')
      .option('-n, --limit <n>', `at most this many entries, 1-${MAX_LIMIT}`, intFlag('--limit', 1, MAX_LIMIT), 100),
    'audit',
  );
}

/** A bare token id (as `iqp token list` shows it) stands for the token's actor. */
function actorFilter(actor: string): string {
  return /^[0-9a-f]{12}$/.test(actor) ? `token:${actor}` : actor;
}

function sinceFilter(since: string, now: Date): string {
  const span = SPAN.exec(since);
  if (span) return new Date(now.getTime() - Number(span[1]) * SPAN_MS[span[2] as keyof typeof SPAN_MS]).toISOString();
  const at = Date.parse(since);
  if (Number.isNaN(at)) throw new IqpError('IQP_E_USAGE', `--since takes a time such as 2026-11-22 or 2026-11-22T08:00:00Z, or a span such as 24h (got ${JSON.stringify(since)}).`);
  return new Date(at).toISOString();
}

function line(e: AuditEntry): string {
  const details = e.details === null ? '' : `  ${JSON.stringify(e.details)}`;
  return printable(`${e.at}  ${e.actor}  ${e.action}  ${e.target}${details}`);
}

export async function run(ctx: Context, opts: Options): Promise<void> {
  const { limit } = opts;
  const query = new URLSearchParams();
  if (opts.actor !== undefined) query.set('actor', actorFilter(opts.actor));
  if (opts.action !== undefined) query.set('action', opts.action);
  if (opts.target !== undefined) query.set('target', opts.target);
  if (opts.since !== undefined) query.set('since', sinceFilter(opts.since, ctx.now()));

  const entries: AuditEntry[] = [];
  let more = false;
  await withRegistry(ctx, { token: true }, async (client) => {
    let cursor: string | null = null;
    do {
      const page = new URLSearchParams(query);
      page.set('limit', String(Math.min(PAGE, limit - entries.length)));
      if (cursor !== null) page.set('cursor', cursor);
      const answer: AuditPage = await client.json<AuditPage>({ method: 'GET', path: `/v1/admin/audit?${page}`, auth: true });
      entries.push(...answer.entries);
      cursor = answer.paging.has_more ? answer.paging.next_cursor : null;
    } while (cursor !== null && entries.length < limit);
    more = cursor !== null;
  });

  ctx.out.result({ entries, has_more: more }, () =>
    entries.length === 0
      ? 'No audit entries match.'
      : [...entries.map(line), ...(more ? [`(the newest ${entries.length}; older entries match too: raise --limit or narrow with --since)`] : [])].join('\n'),
  );
}
