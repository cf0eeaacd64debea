/**
 * Sent with every answer (app.ts sets it first thing), so a browser never guesses a type for an
 * error body or a pack; the fast path's prepared header lists start with it, where Express's
 * answers have it, so both send the same bytes and it costs nothing per request there.
 */
export const NOSNIFF = ['X-Content-Type-Options', 'nosniff'] as const;
