import { describe, expect, it } from 'vitest';
import { sessionConfig } from './session.js';

const OURS = ['-c idle_in_transaction_session_timeout=60s'];

describe('sessionConfig', () => {
  it('leaves a URL without options as it is', () => {
    expect(sessionConfig('postgres://u:p%40ss@db:5432/iqp?sslmode=require', OURS)).toEqual({ connectionString: 'postgres://u:p%40ss@db:5432/iqp?sslmode=require', options: OURS[0] });
    expect(sessionConfig('postgres://db/iqp', OURS)).toEqual({ connectionString: 'postgres://db/iqp', options: OURS[0] });
  });

  it('takes the URL’s options out, decoded as pg decodes them, and puts iqp’s after them', () => {
    expect(sessionConfig('postgres://db/iqp?application_name=a&options=-c%20search_path%3Dreg+-c+statement_timeout=5s&sslmode=require', OURS)).toEqual({
      connectionString: 'postgres://db/iqp?application_name=a&sslmode=require',
      options: `-c search_path=reg -c statement_timeout=5s ${OURS[0]}`,
    });
    expect(sessionConfig('postgres://u@/iqp?host=/run/postgresql&options=-c%20search_path%3Dx', OURS)).toEqual({ connectionString: 'postgres://u@/iqp?host=/run/postgresql', options: `-c search_path=x ${OURS[0]}` });
    expect(sessionConfig('postgres://db/iqp?options=', OURS)).toEqual({ connectionString: 'postgres://db/iqp', options: OURS[0] });
  });
});
