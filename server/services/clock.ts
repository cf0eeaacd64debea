/** Time as the services see it: injectable so tests can pin it. */
export interface Clock {
  /** RFC 3339 UTC with milliseconds. */
  now(): string;
}

export const systemClock: Clock = { now: () => new Date().toISOString() };
