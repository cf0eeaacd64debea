/**
 * The registry's request pipeline: stages on the bare node:http request and response, in front of
 * the Express app, which is the last stage. Each stage answers the request itself or passes it on
 * with next(), having changed nothing but headers every answer carries (CORS, nosniff). This is
 * what the HTTP server calls for every request; nothing patches Express's internals.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

export type Stage = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

export function pipeline(stages: readonly Stage[], last: RequestListener): RequestListener {
  if (stages.length === 0) return last;
  return (req, res) => {
    let i = 0;
    const next = (): void => {
      const stage = stages[i++];
      if (stage) stage(req, res, next);
      else last(req, res);
    };
    next();
  };
}
