/**
 * Frame names of an async-profiler HTML flame graph.
 *
 * - async-profiler 3.x/4.x write every distinct name once into `const cpool = ['all', ...]`, prefix-compressed: the
 *   first character of each entry after the first encodes (char code − 32) how many leading characters it shares with
 *   the previous decoded entry, and the rest is the new suffix. So `StreamTask.runMailboxLoop` may appear in the file
 *   only as `'TrunMailboxLoop'`, and a substring search misses it.
 * - async-profiler 2.x (bundled with Flink 1.19/1.20) writes full names, one frame per line: `f(level,left,width,type,'name'…)`.
 *
 * Entries are JavaScript single-quoted strings (async-profiler escapes `\` and `'` with a backslash).
 * Returns the distinct names in file order.
 */
export function flameGraphFrames(html: string): string[] {
  const cpoolStart = /const\s+cpool\s*=\s*\[/.exec(html);
  if (cpoolStart) return unpack(parseStringArray(html, cpoolStart.index + cpoolStart[0].length));
  return legacyFrames(html);
}

function unpack(entries: string[]): string[] {
  const names: string[] = [];
  let previous = '';
  for (const [index, entry] of entries.entries()) {
    const name = index === 0 ? entry : previous.slice(0, entry.charCodeAt(0) - 32) + entry.slice(1);
    names.push(name);
    previous = name;
  }
  return names;
}

/** Reads a JS string starting at the opening quote `html[start]`; returns the value and the index after the closing quote. */
function readQuoted(html: string, start: number): { value: string; end: number } {
  const quote = html[start];
  let value = '';
  let i = start + 1;
  while (i < html.length) {
    const c = html[i];
    if (c === quote) return { value, end: i + 1 };
    if (c === '\\') {
      const next = html[i + 1];
      if (next === undefined) break;
      value += next === 'n' ? '\n' : next === 't' ? '\t' : next === 'r' ? '\r' : next;
      i += 2;
    } else {
      value += c;
      i += 1;
    }
  }
  throw new Error(`unterminated string literal at offset ${start}`);
}

/** Parses `'a', 'b', … ]` (whitespace, commas and block comments between entries) up to the closing bracket. */
function parseStringArray(html: string, start: number): string[] {
  const entries: string[] = [];
  let i = start;
  while (i < html.length) {
    const c = html[i];
    if (c === ']') return entries;
    if (c === "'" || c === '"') {
      const { value, end } = readQuoted(html, i);
      entries.push(value);
      i = end;
    } else if (c === '/' && html[i + 1] === '*') {
      const close = html.indexOf('*/', i + 2);
      if (close < 0) break;
      i = close + 2;
    } else if (c === ',' || c === ' ' || c === '\n' || c === '\r' || c === '\t') {
      i += 1;
    } else {
      throw new Error(`unexpected ${JSON.stringify(c)} at offset ${i} in the cpool array`);
    }
  }
  throw new Error('unterminated cpool array');
}

function legacyFrames(html: string): string[] {
  const names = new Set<string>();
  for (const match of html.matchAll(/\bf\(\d+,\d+,\d+,\d+,'/g)) {
    names.add(readQuoted(html, match.index + match[0].length - 1).value);
  }
  return [...names];
}
