/**
 * The body parsers in front of a declared route with a `body` schema: JSON always, and
 * application/x-www-form-urlencoded when the route declares `bodyTypes: ['json', 'form']` (stock
 * OAuth client libraries send their token requests that way, RFC 6749 §6). Both share one size
 * limit. What a parser leaves is the object the route's schema judges; anything else (no body, a
 * content type the route does not take) is refused here, before the handler.
 */
import express, { type RequestHandler } from 'express';
import { BODY_MEDIA_TYPES, type RouteSpec } from '../../src/api/route.js';
import { IqpError } from '../../src/errors.js';

const FORM_TYPE = BODY_MEDIA_TYPES.form;

/** Marks a body that came from a form, so contract.ts converts its text the way it converts query strings. */
const FORM_BODY = Symbol('iqp.formBody');

export function isFormBody(body: unknown): boolean {
  return typeof body === 'object' && body !== null && (body as Record<symbol, unknown>)[FORM_BODY] === true;
}

/**
 * A form as an object of strings. RFC 6749 §3.2: "Request and response parameters MUST NOT be
 * included more than once"; a repeated key is refused rather than picking one, since a proxy and
 * this server could pick differently.
 */
export function parseForm(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(text)) {
    if (Object.hasOwn(out, key)) throw new IqpError('IQP_E_INVALID_REQUEST', `body.${key} appears more than once in the form.`, { field: `body.${key}`, rule: 'unique' });
    // defineProperty: a key named __proto__ becomes a field (for the schema to refuse), not the prototype.
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return Object.defineProperty(out, FORM_BODY, { value: true, enumerable: false });
}

/** The parsers for a route, with its own limit when it declares one (asked per request when it is a function). */
export function bodyParsers(spec: RouteSpec, defaultLimit: number): RequestHandler[] {
  const declared = spec.maxBodyBytes;
  if (typeof declared !== 'function') return parsersFor(spec, declared ?? defaultLimit);
  const byLimit = new Map<number, RequestHandler[]>();
  return [
    (req, res, next) => {
      const limit = declared();
      let chain = byLimit.get(limit);
      if (!chain) byLimit.set(limit, (chain = parsersFor(spec, limit)));
      const [first, ...rest] = chain;
      // Runs the chain in order, as Express would have.
      const step = (i: number) => (err?: unknown) => (err ? next(err) : i < rest.length ? rest[i]!(req, res, step(i + 1)) : next());
      first!(req, res, step(0));
    },
  ];
}

function parsersFor(spec: RouteSpec, limit: number): RequestHandler[] {
  const form = spec.bodyTypes?.includes('form') ?? false;
  const needs = form ? `a JSON body (Content-Type: application/json) or a form (Content-Type: ${FORM_TYPE})` : 'a JSON body (Content-Type: application/json)';
  const chain: RequestHandler[] = [express.json({ limit, strict: true })];
  // Text first, so the size limit and charset are body-parser's, then parsed here (duplicates refused).
  if (form) chain.push(express.text({ type: FORM_TYPE, limit }));
  chain.push((req, _res, next) => {
    // No body, or one of a type no parser above took, reaches here as undefined (express.json only makes objects and arrays).
    if (req.body === undefined) return next(new IqpError('IQP_E_INVALID_REQUEST', `The request needs ${needs}.`, { field: 'body' }));
    if (typeof req.body === 'string') {
      try {
        req.body = parseForm(req.body);
      } catch (err) {
        return next(err);
      }
    }
    next();
  });
  return chain;
}
