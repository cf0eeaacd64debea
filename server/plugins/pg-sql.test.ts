import { describe, expect, it } from 'vitest';
import { numberPlaceholders } from './pg-sql.js';

describe('numberPlaceholders', () => {
  it.each([
    ['SELECT ?', 'SELECT $1'],
    ['INSERT INTO t (a, b) VALUES (?, ?), (?,?)', 'INSERT INTO t (a, b) VALUES ($1, $2), ($3,$4)'],
    ["SELECT '?', ?", "SELECT '?', $1"],
    ["SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"],
    ["SELECT E'\\'?', ?", "SELECT E'\\'?', $1"],
    ["SELECT e'\\\\', ?", "SELECT e'\\\\', $1"],
    // Not an E-string: the e ends an identifier, so the backslash is an ordinary character.
    ["SELECT name'\\', ?", "SELECT name'\\', $1"],
    ['SELECT "?", "a""?", ?', 'SELECT "?", "a""?", $1'],
    ['SELECT $$?$$, ?', 'SELECT $$?$$, $1'],
    ['SELECT $fn$ ? $$ ? $fn$, ?', 'SELECT $fn$ ? $$ ? $fn$, $1'],
    // An identifier may hold $; it does not open a dollar quote.
    ['SELECT a$b$ ?', 'SELECT a$b$ $1'],
    ['SELECT ? -- ? ?\n, ?', 'SELECT $1 -- ? ?\n, $2'],
    ['SELECT ? /* ? /* ? */ ? */ , ?', 'SELECT $1 /* ? /* ? */ ? */ , $2'],
    // Unterminated: left as is, for PostgreSQL to refuse.
    ["SELECT ?, 'open ?", "SELECT $1, 'open ?"],
    ['SELECT ?, $$ open ?', 'SELECT $1, $$ open ?'],
    ['SELECT ?, /* open ?', 'SELECT $1, /* open ?'],
  ])('%s', (sql, numbered) => {
    expect(numberPlaceholders(sql)).toBe(numbered);
  });
});
