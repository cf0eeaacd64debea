/**
 * Where JSON text goes wrong, for messages an author can act on. JSON.parse's messages give a
 * character offset at best and sometimes only a quote of the text around the problem (which then
 * reaches a terminal unescaped); this finds the offset itself, and says what was expected there.
 * Only called after JSON.parse has failed, so it favours plainness over speed.
 */

export interface JsonSyntaxError {
  /** Offset (UTF-16 code units) of the first character that cannot be part of valid JSON. */
  readonly offset: number;
  readonly reason: string;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

function shown(text: string, i: number): string {
  if (i >= text.length) return 'the end of the text';
  const c = text.codePointAt(i)!;
  return c < 0x20 || (c >= 0x7f && c < 0xa0) ? `character U+${c.toString(16).toUpperCase().padStart(4, '0')}` : `'${String.fromCodePoint(c)}'`;
}

/** The first syntax error in `text`, or null if it is one valid JSON value. Iterative: any depth. */
export function findJsonSyntaxError(text: string): JsonSyntaxError | null {
  const n = text.length;
  let i = 0;
  const fail = (reason: string): JsonSyntaxError => ({ offset: i, reason: `${reason}, found ${shown(text, i)}` });
  const skip = (): void => {
    while (i < n && WS.has(text.charCodeAt(i))) i += 1;
  };
  /** Open containers: '{' or '['. */
  const stack: number[] = [];
  for (;;) {
    // A value.
    skip();
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      stack.push(c);
      i += 1;
      skip();
      if (c === 0x7b) {
        if (text.charCodeAt(i) === 0x7d) {
          stack.pop();
          i += 1;
        } else {
          const key = readKey();
          if (key) return key;
          continue;
        }
      } else if (text.charCodeAt(i) === 0x5d) {
        stack.pop();
        i += 1;
      } else {
        continue;
      }
    } else if (c === 0x22) {
      const bad = readString();
      if (bad) return bad;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
      if (!m) return fail('expected a digit');
      i += m[0].length;
    } else {
      const word = ['true', 'false', 'null'].find((w) => text.startsWith(w, i));
      if (!word) return fail(i >= n ? 'the text ends where a value was expected' : 'expected a value (an object, array, string, number, true, false or null)');
      i += word.length;
    }
    // After a value: close containers, or a comma and the next member.
    for (;;) {
      skip();
      const open = stack.at(-1);
      if (open === undefined) return i < n ? fail('expected the end of the text after the value') : null;
      const d = text.charCodeAt(i);
      if (d === 0x2c) {
        i += 1;
        if (open === 0x7b) {
          skip();
          const key = readKey();
          if (key) return key;
        }
        break;
      }
      if ((open === 0x7b && d === 0x7d) || (open === 0x5b && d === 0x5d)) {
        stack.pop();
        i += 1;
        continue;
      }
      return fail(open === 0x7b ? "expected ',' or '}' after a member of an object" : "expected ',' or ']' after an element of an array");
    }
  }

  /** A member's "key" and its colon; the value follows. */
  function readKey(): JsonSyntaxError | null {
    if (text.charCodeAt(i) !== 0x22) return fail('expected a member name in double quotes');
    const bad = readString();
    if (bad) return bad;
    skip();
    if (text.charCodeAt(i) !== 0x3a) return fail("expected ':' after the member name");
    i += 1;
    return null;
  }

  function readString(): JsonSyntaxError | null {
    i += 1;
    for (;;) {
      if (i >= n) return fail('the string is never closed');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i += 1;
        return null;
      }
      if (c < 0x20) return fail('control characters must be escaped inside a string');
      if (c === 0x5c) {
        const e = text.charCodeAt(i + 1);
        if (e === 0x75) {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return fail('\\u must be followed by four hex digits');
          i += 6;
          continue;
        }
        if (!'"\\/bfnrt'.includes(String.fromCharCode(e)) || i + 1 >= n) {
          i += 1;
          return fail('unknown escape');
        }
        i += 2;
        continue;
      }
      i += 1;
    }
  }
}

/** 1-based line and column (UTF-16 code units, as most editors count) of an offset in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let k = text.indexOf('\n'); k >= 0 && k < offset; k = text.indexOf('\n', k + 1)) {
    line += 1;
    lineStart = k + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
