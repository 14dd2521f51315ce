import { describe, expect, it } from 'vitest';
import { ValidationError } from '#domain/errors.ts';
import {
  atTimeProblem,
  firstFireAt,
  nextFireAfter,
  parseSchedule,
  resolveLocalTime,
  type Schedule,
  scheduleProblem,
  timeZoneProblem,
} from '#domain/schedule.ts';

/** The clock the tests move: instants are written as ISO strings, results read back the same way. */
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString().replace('.000Z', 'Z');

/** The next `count` firings after `from`, each computed from the one before (as a scheduler moves on). */
function firings(expression: string, timeZone: string, from: string, count: number): Array<string | null> {
  const schedule = parseSchedule(expression);
  const out: Array<string | null> = [];
  let instant = at(from);
  let anchor = instant;
  for (let i = 0; i < count; i++) {
    const next = nextFireAfter(schedule, timeZone, instant, anchor);
    out.push(iso(next));
    if (next === null) break;
    instant = next;
    anchor = next;
  }
  return out;
}

describe('schedule expressions: parsing', () => {
  it.each([
    'rate(1 minute)',
    'rate(5 minutes)',
    'rate(1 hour)',
    'rate(12 hours)',
    'rate(1 day)',
    'rate(7 days)',
    'cron(0 3 * * ? *)',
    'cron(0/15 * ? * MON-FRI *)',
    'cron(*/10 8-18 ? * 2-6 *)',
    'cron(0 12 1,15 JAN,JUL ? 2026-2030)',
    'cron(0 0 L * ? *)',
    'cron(0 0 LW * ? *)',
    'cron(0 0 15W * ? *)',
    'cron(0 0 ? * 6L *)',
    'cron(0 0 ? * FRIL *)',
    'cron(0 0 ? * MON#2 *)',
    'cron(0 0 ? * sun *)',
    'at(2026-12-24T18:00:00)',
  ])('accepts %s', (expression) => {
    expect(scheduleProblem(expression)).toBeUndefined();
  });

  it.each([
    [
      'every day',
      'must be rate(value unit), cron(minutes hours day-of-month month day-of-week year) or at(yyyy-mm-ddThh:mm:ss)',
    ],
    ['rate(0 minutes)', "rate value '0' must be a whole number from 1 to 1000000"],
    ['rate(1 minutes)', 'rate unit must be singular for 1: rate(1 minute)'],
    ['rate(5 minute)', 'rate unit must be plural for 5: rate(5 minutes)'],
    ['rate(5 weeks)', "rate unit 'weeks' must be minute(s), hour(s) or day(s)"],
    ['cron(0 3 * *)', 'cron must have 6 fields (minutes hours day-of-month month day-of-week year), got 4'],
    ['cron(0 3 * * MOX *)', "cron day-of-week field 'MOX' is not a weekday (1-7 or SUN-SAT)"],
    ['cron(0 3 ? * MON-FRX *)', "cron day-of-week field 'FRX' is not a weekday (1-7 or SUN-SAT)"],
    ['cron(0 3 ? * 0 *)', "cron day-of-week field '0' is out of range 1-7"],
    ['cron(0 3 ? JAM * *)', "cron month field 'JAM' is not a month (1-12 or JAN-DEC)"],
    ['cron(60 3 * * ? *)', "cron minutes field '60' is out of range 0-59"],
    ['cron(0 24 * * ? *)', "cron hours field '24' is out of range 0-23"],
    ['cron(0 3 32 * ? *)', "cron day-of-month field '32' is out of range 1-31"],
    ['cron(0 3 * * ? 1969)', "cron year field '1969' is out of range 1970-2199"],
    ['cron(0 20-8 * * ? *)', "cron hours field '20-8' is a range that runs backwards; write it as a list instead"],
    ['cron(0/0 3 * * ? *)', "cron minutes field '0/0' has step '0', which must be a whole number of at least 1"],
    [
      'cron(0 3 * * * *)',
      "cron needs '?' in exactly one of day-of-month ('*') and day-of-week ('*'), e.g. cron(0 3 * * ? *) or cron(0 3 ? * MON-FRI *)",
    ],
    [
      'cron(0 3 ? * ? *)',
      "cron needs '?' in exactly one of day-of-month ('?') and day-of-week ('?'), e.g. cron(0 3 * * ? *) or cron(0 3 ? * MON-FRI *)",
    ],
    ['cron(? 3 * * ? *)', "cron minutes field '?' cannot be '?': only day-of-month or day-of-week can"],
    [
      'cron(0 3 ? * L *)',
      "cron day-of-week field 'L' must name the weekday before L, e.g. 6L or FRIL for the last Friday of the month",
    ],
    ['cron(0 3 ? * 2#6 *)', "cron day-of-week field '2#6' asks for occurrence '6', which must be 1 to 5"],
    [
      'cron(0 3 L-2 * ? *)',
      "cron day-of-month field 'L-2' uses L or W in a way not supported: use L, LW or nW (e.g. 15W) alone",
    ],
    ['cron(0 L * * ? *)', "cron hours field 'L' uses L, W or '#', which only the day fields accept"],
    [
      'at(2026-12-24 18:00:00)',
      'at(2026-12-24 18:00:00) must be at(yyyy-mm-ddThh:mm:ss), e.g. at(2026-12-24T18:00:00)',
    ],
    ['at(2026-02-29T10:00:00)', 'at(2026-02-29T10:00:00) is not a real date and time'],
  ])('refuses %s: %s', (expression, problem) => {
    expect(scheduleProblem(expression)).toBe(problem);
  });

  it('throws a ValidationError that names the field', () => {
    expect(() => parseSchedule('cron(0 3 * * MOX *)')).toThrow(ValidationError);
    expect(() => parseSchedule('cron(0 3 * * MOX *)')).toThrow(
      "schedule: cron day-of-week field 'MOX' is not a weekday (1-7 or SUN-SAT)",
    );
  });

  it('takes IANA time zones and nothing else', () => {
    expect(timeZoneProblem('Europe/Berlin')).toBeUndefined();
    expect(timeZoneProblem('America/New_York')).toBeUndefined();
    expect(timeZoneProblem('UTC')).toBeUndefined();
    expect(timeZoneProblem('Mars/Olympus_Mons')).toBe(
      "'Mars/Olympus_Mons' is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)",
    );
    expect(timeZoneProblem('+01:00')).toMatch(/is not an IANA time zone/);
    // A name with an offset in it is still no zone (the offset library would read +05 out of it).
    expect(timeZoneProblem('Foo+05')).toMatch(/is not an IANA time zone/);
    expect(() => nextFireAfter(parseSchedule('cron(0 2 * * ? *)'), 'Foo+05', Date.UTC(2026, 0, 1))).toThrow(
      /^timezone: 'Foo\+05' is not an IANA time zone/,
    );
  });
});

describe('schedule expressions: the next firing', () => {
  it('rate: fixed periods from the previous firing, starting at once', () => {
    const schedule = parseSchedule('rate(5 minutes)');
    expect(iso(firstFireAt(schedule, 'UTC', at('2026-11-27T10:00:12Z')))).toBe('2026-11-27T10:00:12Z');
    expect(firings('rate(5 minutes)', 'UTC', '2026-11-27T10:00:12Z', 3)).toEqual([
      '2026-11-27T10:05:12Z',
      '2026-11-27T10:10:12Z',
      '2026-11-27T10:15:12Z',
    ]);
    // Late (the server was down for 17 minutes): the next firing keeps the phase and lies after now.
    expect(iso(nextFireAfter(schedule, 'UTC', at('2026-11-27T10:17:00Z'), at('2026-11-27T10:00:12Z')))).toBe(
      '2026-11-27T10:20:12Z',
    );
  });

  it('rate(1 day) is 24 hours, also across a 23-hour and a 25-hour day (Europe/Berlin)', () => {
    expect(firings('rate(1 day)', 'Europe/Berlin', '2026-03-28T02:00:00Z', 2)).toEqual([
      '2026-03-29T02:00:00Z', // 04:00 local (summer time began at 02:00): still 24 hours later
      '2026-03-30T02:00:00Z',
    ]);
    expect(firings('rate(1 day)', 'Europe/Berlin', '2026-10-24T02:00:00Z', 1)).toEqual(['2026-10-25T02:00:00Z']);
  });

  it('cron in UTC: fields, steps, lists, weekdays, L, W and #', () => {
    expect(firings('cron(0/20 9 ? * MON-FRI *)', 'UTC', '2026-11-27T09:30:00Z', 4)).toEqual([
      '2026-11-27T09:40:00Z', // Friday
      '2026-11-30T09:00:00Z', // Monday
      '2026-11-30T09:20:00Z',
      '2026-11-30T09:40:00Z',
    ]);
    expect(firings('cron(0 0 L * ? *)', 'UTC', '2028-01-31T00:00:00Z', 2)).toEqual([
      '2028-02-29T00:00:00Z',
      '2028-03-31T00:00:00Z',
    ]);
    // 15W: the weekday nearest the 15th (Nov 15 2026 is a Sunday → Monday 16th).
    expect(firings('cron(0 6 15W * ? *)', 'UTC', '2026-11-01T00:00:00Z', 1)).toEqual(['2026-11-16T06:00:00Z']);
    // LW: the last weekday (Jan 31 2026 is a Saturday → Friday 30th).
    expect(firings('cron(0 6 LW * ? *)', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-01-30T06:00:00Z']);
    // 6L: the last Friday; 2#1: the first Monday (1 = SUN … 7 = SAT, as EventBridge counts).
    expect(firings('cron(0 6 ? * 6L *)', 'UTC', '2026-11-01T00:00:00Z', 1)).toEqual(['2026-11-27T06:00:00Z']);
    expect(firings('cron(0 6 ? * 2#1 *)', 'UTC', '2026-11-03T00:00:00Z', 1)).toEqual(['2026-12-07T06:00:00Z']);
    expect(firings('cron(30 23 31 DEC ? 2026)', 'UTC', '2026-01-01T00:00:00Z', 2)).toEqual([
      '2026-12-31T23:30:00Z',
      null,
    ]);
  });

  it('cron in a time zone fires on local wall-clock time', () => {
    expect(firings('cron(0 3 * * ? *)', 'Europe/Berlin', '2026-01-10T00:00:00Z', 1)).toEqual(['2026-01-10T02:00:00Z']);
    expect(firings('cron(0 3 * * ? *)', 'Europe/Berlin', '2026-07-10T00:00:00Z', 1)).toEqual(['2026-07-10T01:00:00Z']);
    expect(firings('cron(0 9 ? * MON *)', 'America/New_York', '2026-11-27T00:00:00Z', 1)).toEqual([
      '2026-11-30T14:00:00Z',
    ]);
  });

  it('Europe/Berlin, spring forward: 02:30 does not exist on 2026-03-29 and is skipped that day', () => {
    expect(firings('cron(30 2 * * ? *)', 'Europe/Berlin', '2026-03-28T00:00:00Z', 3)).toEqual([
      '2026-03-28T01:30:00Z', // 02:30 CET
      '2026-03-30T00:30:00Z', // 02:30 CEST; none on the 29th
      '2026-03-31T00:30:00Z',
    ]);
    // An hourly cron has one firing fewer that day.
    const hourly = firings('cron(0 * * * ? *)', 'Europe/Berlin', '2026-03-29T00:30:00Z', 2);
    expect(hourly).toEqual(['2026-03-29T01:00:00Z', '2026-03-29T02:00:00Z']); // 03:00 and 04:00 CEST: no 02:00
  });

  it('Europe/Berlin, fall back: 02:30 occurs twice on 2026-10-25 and fires once, at the first occurrence', () => {
    expect(firings('cron(30 2 * * ? *)', 'Europe/Berlin', '2026-10-24T12:00:00Z', 2)).toEqual([
      '2026-10-25T00:30:00Z', // 02:30 CEST, not 01:30Z (02:30 CET)
      '2026-10-26T01:30:00Z',
    ]);
  });

  it('America/New_York: 02:30 skipped on 2026-03-08, the repeated 01:00-01:59 of 2026-11-01 fires once', () => {
    expect(firings('cron(30 2 * * ? *)', 'America/New_York', '2026-03-07T12:00:00Z', 2)).toEqual([
      '2026-03-09T06:30:00Z', // none on the 8th: next is 02:30 EDT on the 9th
      '2026-03-10T06:30:00Z',
    ]);
    expect(firings('cron(0/30 1 * * ? *)', 'America/New_York', '2026-11-01T04:00:00Z', 3)).toEqual([
      '2026-11-01T05:00:00Z', // 01:00 EDT
      '2026-11-01T05:30:00Z', // 01:30 EDT; 01:00 and 01:30 EST do not fire again
      '2026-11-02T06:00:00Z',
    ]);
    // Asked during the repeated hour (01:10 EST), nothing more fires that night.
    expect(firings('cron(0/30 1 * * ? *)', 'America/New_York', '2026-11-01T06:10:00Z', 1)).toEqual([
      '2026-11-02T06:00:00Z',
    ]);
  });

  it('at: once, at the local time; an at() in a spring-forward gap is refused', () => {
    expect(firings('at(2026-12-24T18:00:00)', 'Europe/Berlin', '2026-12-01T00:00:00Z', 2)).toEqual([
      '2026-12-24T17:00:00Z',
      null,
    ]);
    expect(firstFireAt(parseSchedule('at(2026-01-01T00:00:00)'), 'UTC', at('2026-06-01T00:00:00Z'))).toBeNull();
    const gap: Schedule = parseSchedule('at(2026-03-29T02:30:00)');
    expect(atTimeProblem(gap, 'Europe/Berlin')).toBe(
      '2026-03-29T02:30:00 does not exist in Europe/Berlin: the clocks skip it (daylight saving time)',
    );
    expect(atTimeProblem(gap, 'UTC')).toBeUndefined();
    // An at() in the repeated hour is the first occurrence.
    expect(
      iso(resolveLocalTime({ year: 2026, month: 10, day: 25, hour: 2, minute: 30, second: 0 }, 'Europe/Berlin')),
    ).toBe('2026-10-25T00:30:00Z');
  });

  it('cron that never matches again answers null', () => {
    expect(firings('cron(0 0 29 FEB ? 2027-2029)', 'UTC', '2026-01-01T00:00:00Z', 2)).toEqual([
      '2028-02-29T00:00:00Z',
      null,
    ]);
  });
});
