import { tzOffset } from '@date-fns/tz';
import { ValidationError } from './errors.ts';

/**
 * Schedule expressions as EventBridge Scheduler takes them — `rate(…)`, six-field `cron(…)` and one-off
 * `at(…)` — evaluated in an IANA time zone, so that local mode fires rules when AWS would.
 *
 * Daylight saving time follows EventBridge Scheduler's documented behaviour:
 * - a cron (or at) time that does not exist on the day clocks spring forward (02:30 in Europe/Berlin on the
 *   last Sunday of March) is skipped that day;
 * - a cron time that occurs twice on the day clocks fall back fires once, at its first occurrence (the
 *   earlier instant, still on summer time); the repeated hour does not fire again;
 * - a rate is a fixed duration (`rate(1 day)` is 24 hours, also across a 23- or 25-hour day), counted from
 *   the previous firing.
 */

export type RateUnit = 'minute' | 'hour' | 'day';

export interface RateSchedule {
  kind: 'rate';
  value: number;
  unit: RateUnit;
  /** The period in milliseconds. */
  everyMs: number;
}

/** Which days of a month a cron's day-of-month field picks. */
export type DayOfMonthRule =
  | { kind: 'any' }
  | { kind: 'days'; days: ReadonlySet<number> }
  | { kind: 'last' }
  | { kind: 'lastWeekday' }
  | { kind: 'nearestWeekday'; day: number };

/** Which days a cron's day-of-week field picks (1 = Sunday … 7 = Saturday, as EventBridge counts). */
export type DayOfWeekRule =
  | { kind: 'any' }
  | { kind: 'days'; days: ReadonlySet<number> }
  | { kind: 'lastOfMonth'; weekday: number }
  | { kind: 'nth'; weekday: number; n: number };

export interface CronSchedule {
  kind: 'cron';
  minutes: readonly number[];
  hours: readonly number[];
  dayOfMonth: DayOfMonthRule;
  months: ReadonlySet<number>;
  dayOfWeek: DayOfWeekRule;
  /** Undefined for `*`: every year EventBridge accepts. */
  years?: ReadonlySet<number>;
}

/** A wall-clock time in the rule's time zone. */
export interface LocalDateTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export interface AtSchedule {
  kind: 'at';
  local: LocalDateTime;
}

export type Schedule = RateSchedule | CronSchedule | AtSchedule;

/** The time zone of a rule that names none (EventBridge Scheduler's default). */
export const DEFAULT_TIME_ZONE = 'UTC';

const MINUTE_MS = 60_000;
/** Largest rate value taken (a million days is far beyond any schedule's life; it keeps the arithmetic exact). */
const MAX_RATE_VALUE = 1_000_000;
const RATE_UNIT_MS: Record<RateUnit, number> = { minute: MINUTE_MS, hour: 60 * MINUTE_MS, day: 24 * 60 * MINUTE_MS };

/** The years EventBridge's cron accepts. */
const FIRST_YEAR = 1970;
const LAST_YEAR = 2199;

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const EXPECTED =
  'must be rate(value unit), cron(minutes hours day-of-month month day-of-week year) or at(yyyy-mm-ddThh:mm:ss)';

/** A problem with a schedule expression, in words for the user (without the field name in front). */
class ScheduleProblem extends Error {}

// ---------------------------------------------------------------------------------------------------------------
// parsing

function parseRate(body: string): RateSchedule {
  const match = /^(\S+)\s+(\S+)$/.exec(body.trim());
  if (!match) throw new ScheduleProblem(`rate(${body}) must be rate(value unit), e.g. rate(5 minutes)`);
  const [, valueText = '', unitText = ''] = match;
  if (!/^\d+$/.test(valueText) || Number(valueText) < 1 || Number(valueText) > MAX_RATE_VALUE) {
    throw new ScheduleProblem(`rate value '${valueText}' must be a whole number from 1 to ${MAX_RATE_VALUE}`);
  }
  const value = Number(valueText);
  const unit = /^(minute|hour|day)s?$/.exec(unitText)?.[1] as RateUnit | undefined;
  if (!unit) throw new ScheduleProblem(`rate unit '${unitText}' must be minute(s), hour(s) or day(s)`);
  // EventBridge's rule: singular for 1, plural for more.
  if (value === 1 && unitText !== unit) throw new ScheduleProblem(`rate unit must be singular for 1: rate(1 ${unit})`);
  if (value > 1 && unitText === unit) {
    throw new ScheduleProblem(`rate unit must be plural for ${value}: rate(${value} ${unit}s)`);
  }
  return { kind: 'rate', value, unit, everyMs: value * RATE_UNIT_MS[unit] };
}

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  /** Names accepted for values, index 0 standing for `min`. */
  names?: string[];
  /** What a value must be, for messages. */
  what: string;
}

const FIELD = {
  minutes: { name: 'minutes', min: 0, max: 59, what: 'a number from 0 to 59' },
  hours: { name: 'hours', min: 0, max: 23, what: 'a number from 0 to 23' },
  dayOfMonth: { name: 'day-of-month', min: 1, max: 31, what: 'a day of the month (1-31)' },
  month: { name: 'month', min: 1, max: 12, names: MONTH_NAMES, what: 'a month (1-12 or JAN-DEC)' },
  dayOfWeek: { name: 'day-of-week', min: 1, max: 7, names: WEEKDAY_NAMES, what: 'a weekday (1-7 or SUN-SAT)' },
  year: { name: 'year', min: FIRST_YEAR, max: LAST_YEAR, what: `a year from ${FIRST_YEAR} to ${LAST_YEAR}` },
} satisfies Record<string, FieldSpec>;

function fieldProblem(spec: FieldSpec, token: string, rule: string): ScheduleProblem {
  return new ScheduleProblem(`cron ${spec.name} field '${token}' ${rule}`);
}

function parseValue(spec: FieldSpec, token: string): number {
  const byName = spec.names?.indexOf(token.toUpperCase()) ?? -1;
  if (byName >= 0) return spec.min + byName;
  if (!/^\d+$/.test(token)) throw fieldProblem(spec, token, `is not ${spec.what}`);
  const value = Number(token);
  if (value < spec.min || value > spec.max) throw fieldProblem(spec, token, `is out of range ${spec.min}-${spec.max}`);
  return value;
}

/** `*`, values, ranges `a-b`, steps `x/n` (x = `*`, a value or a range) and comma lists of them. */
function parseList(spec: FieldSpec, field: string): Set<number> {
  const values = new Set<number>();
  for (const item of field.split(',')) {
    if (item === '') throw fieldProblem(spec, field, 'has an empty list entry');
    const [rangeText = '', stepText, extra] = item.split('/');
    if (extra !== undefined) throw fieldProblem(spec, item, "has more than one '/'");
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) < 1) {
        throw fieldProblem(spec, item, `has step '${stepText}', which must be a whole number of at least 1`);
      }
      step = Number(stepText);
    }
    let from: number;
    let to: number;
    if (rangeText === '*') {
      from = spec.min;
      to = spec.max;
    } else if (rangeText.includes('-')) {
      const [a = '', b = '', more] = rangeText.split('-');
      if (more !== undefined || a === '' || b === '') throw fieldProblem(spec, item, 'is not a range a-b');
      from = parseValue(spec, a);
      to = parseValue(spec, b);
      if (from > to) throw fieldProblem(spec, item, `is a range that runs backwards; write it as a list instead`);
    } else {
      from = parseValue(spec, rangeText);
      // `5/15` means from 5 to the end of the field, every 15.
      to = stepText === undefined ? from : spec.max;
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return values;
}

function parseDayOfMonth(field: string): DayOfMonthRule {
  const spec = FIELD.dayOfMonth;
  if (field === '?') return { kind: 'any' };
  if (field === '*') return { kind: 'any' };
  const upper = field.toUpperCase();
  if (upper === 'L') return { kind: 'last' };
  if (upper === 'LW') return { kind: 'lastWeekday' };
  const nearest = /^(\d+)W$/.exec(upper);
  if (nearest) return { kind: 'nearestWeekday', day: parseValue(spec, nearest[1] ?? '') };
  if (/[LW]/.test(upper)) {
    throw fieldProblem(spec, field, 'uses L or W in a way not supported: use L, LW or nW (e.g. 15W) alone');
  }
  if (field.includes('#')) throw fieldProblem(spec, field, "uses '#', which belongs in the day-of-week field");
  return { kind: 'days', days: parseList(spec, field) };
}

function parseDayOfWeek(field: string): DayOfWeekRule {
  const spec = FIELD.dayOfWeek;
  if (field === '?' || field === '*') return { kind: 'any' };
  const upper = field.toUpperCase();
  const nth = /^([^#]+)#(.*)$/.exec(upper);
  if (nth) {
    const weekday = parseValue(spec, nth[1] ?? '');
    const n = nth[2] ?? '';
    if (!/^[1-5]$/.test(n)) throw fieldProblem(spec, field, `asks for occurrence '${n}', which must be 1 to 5`);
    return { kind: 'nth', weekday, n: Number(n) };
  }
  if (upper === 'L') {
    throw fieldProblem(spec, field, 'must name the weekday before L, e.g. 6L or FRIL for the last Friday of the month');
  }
  const last = /^(.+)L$/.exec(upper);
  if (last && !field.includes(',') && !field.includes('-')) {
    return { kind: 'lastOfMonth', weekday: parseValue(spec, last[1] ?? '') };
  }
  if (field.includes('?')) throw fieldProblem(spec, field, "uses '?' inside a list; '?' stands alone");
  return { kind: 'days', days: parseList(spec, field) };
}

function parseCron(body: string): CronSchedule {
  const fields = body.trim().split(/\s+/).filter(Boolean);
  if (fields.length !== 6) {
    throw new ScheduleProblem(
      `cron must have 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`,
    );
  }
  const [minutes = '', hours = '', dom = '', month = '', dow = '', year = ''] = fields;
  const plainFields: Array<[FieldSpec, string]> = [
    [FIELD.minutes, minutes],
    [FIELD.hours, hours],
    [FIELD.month, month],
    [FIELD.year, year],
  ];
  for (const [spec, field] of plainFields) {
    if (field === '?') throw fieldProblem(spec, field, "cannot be '?': only day-of-month or day-of-week can");
    if (/[LW#]/i.test(field) && !spec.names) {
      throw fieldProblem(spec, field, "uses L, W or '#', which only the day fields accept");
    }
  }
  // Each field first, so that a bad value is named even where the '?' rule is broken too.
  const cron: CronSchedule = {
    kind: 'cron',
    minutes: [...parseList(FIELD.minutes, minutes)].sort((a, b) => a - b),
    hours: [...parseList(FIELD.hours, hours)].sort((a, b) => a - b),
    dayOfMonth: parseDayOfMonth(dom),
    months: parseList(FIELD.month, month),
    dayOfWeek: parseDayOfWeek(dow),
    ...(year === '*' ? {} : { years: parseList(FIELD.year, year) }),
  };
  if ((dom === '?') === (dow === '?')) {
    throw new ScheduleProblem(
      `cron needs '?' in exactly one of day-of-month ('${dom}') and day-of-week ('${dow}'), e.g. cron(0 3 * * ? *) or cron(0 3 ? * MON-FRI *)`,
    );
  }
  return cron;
}

function parseAt(body: string): AtSchedule {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(body.trim());
  if (!match) throw new ScheduleProblem(`at(${body}) must be at(yyyy-mm-ddThh:mm:ss), e.g. at(2026-12-24T18:00:00)`);
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) {
    throw new ScheduleProblem(`at(${body}) is not a real date and time`);
  }
  return { kind: 'at', local: { year, month, day, hour, minute, second } };
}

function parse(expression: string): Schedule {
  const match = /^(rate|cron|at)\((.*)\)$/s.exec(expression.trim());
  if (!match) throw new ScheduleProblem(EXPECTED);
  const [, kind, body = ''] = match;
  if (kind === 'rate') return parseRate(body);
  if (kind === 'cron') return parseCron(body);
  return parseAt(body);
}

/** What is wrong with a schedule expression, or undefined when it is valid. */
export function scheduleProblem(expression: string): string | undefined {
  try {
    parse(expression);
    return undefined;
  } catch (error) {
    if (error instanceof ScheduleProblem) return error.message;
    throw error;
  }
}

/** Parses `rate(…)`, `cron(…)` or `at(…)`; throws a ValidationError naming the field `schedule` and the problem. */
export function parseSchedule(expression: string): Schedule {
  try {
    return parse(expression);
  } catch (error) {
    if (error instanceof ScheduleProblem) throw new ValidationError(`schedule: ${error.message}`, { cause: error });
    throw error;
  }
}

/** What is wrong with a time-zone name, or undefined when it is an IANA time zone this runtime knows. */
export function timeZoneProblem(timeZone: string): string | undefined {
  // Names only (Europe/Berlin, UTC): offsets such as +01:00 are not time zones in EventBridge's sense.
  if (/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(timeZone) && isKnownTimeZone(timeZone)) return undefined;
  return `'${timeZone}' is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)`;
}

// ---------------------------------------------------------------------------------------------------------------
// evaluation

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** 1 = Sunday … 7 = Saturday. */
function weekdayOf(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1;
}

const isWorkday = (weekday: number) => weekday >= 2 && weekday <= 6;

/** The weekday (Mon-Fri) nearest to `day` in its month, never crossing into another month (Quartz's `W`). */
function nearestWorkday(year: number, month: number, day: number): number | undefined {
  const last = daysInMonth(year, month);
  if (day > last) return undefined;
  const weekday = weekdayOf(year, month, day);
  if (isWorkday(weekday)) return day;
  if (weekday === 7) return day === 1 ? day + 2 : day - 1; // Saturday: Friday, or Monday on the 1st
  return day === last ? day - 2 : day + 1; // Sunday: Monday, or Friday on the last day
}

function dayMatches(cron: CronSchedule, year: number, month: number, day: number): boolean {
  const last = daysInMonth(year, month);
  const dom = cron.dayOfMonth;
  switch (dom.kind) {
    case 'days':
      if (!dom.days.has(day)) return false;
      break;
    case 'last':
      if (day !== last) return false;
      break;
    case 'lastWeekday': {
      let d = last;
      while (!isWorkday(weekdayOf(year, month, d))) d -= 1;
      if (day !== d) return false;
      break;
    }
    case 'nearestWeekday':
      if (nearestWorkday(year, month, dom.day) !== day) return false;
      break;
    case 'any':
      break;
  }
  const dow = cron.dayOfWeek;
  const weekday = weekdayOf(year, month, day);
  switch (dow.kind) {
    case 'days':
      return dow.days.has(weekday);
    case 'lastOfMonth':
      return weekday === dow.weekday && day + 7 > last;
    case 'nth':
      return weekday === dow.weekday && Math.ceil(day / 7) === dow.n;
    case 'any':
      return true;
  }
}

/** Whether the runtime's time-zone database knows the name (Intl refuses a name it does not know). */
function isKnownTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const checkedZones = new Set<string>();
/** The zone's offset from UTC in minutes at an instant, from the runtime's time-zone database. */
function offsetMinutes(timeZone: string, instant: number): number {
  if (!checkedZones.has(timeZone)) {
    // tzOffset reads an offset out of a name it does not know (`Foo+05`): only a known zone gets that far.
    const problem = timeZoneProblem(timeZone);
    if (problem) throw new ValidationError(`timezone: ${problem}`);
    checkedZones.add(timeZone);
  }
  return tzOffset(timeZone, new Date(instant));
}

/**
 * The instant of a wall-clock time in a zone: the earlier one when the time occurs twice (clocks fall back),
 * undefined when it does not occur (clocks spring forward over it).
 */
export function resolveLocalTime(local: LocalDateTime, timeZone: string): number | undefined {
  const asUtc = Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second);
  const day = 24 * 60 * MINUTE_MS;
  // The offsets in force around that time; each gives a candidate instant, kept only if the zone agrees.
  const offsets = new Set([
    offsetMinutes(timeZone, asUtc - day),
    offsetMinutes(timeZone, asUtc),
    offsetMinutes(timeZone, asUtc + day),
  ]);
  const instants = [...offsets]
    .map((offset) => asUtc - offset * MINUTE_MS)
    .filter((instant) => offsetMinutes(timeZone, instant) * MINUTE_MS === asUtc - instant)
    .sort((a, b) => a - b);
  return instants[0];
}

/** The wall-clock time of an instant in a zone. */
export function localTimeOf(instant: number, timeZone: string): LocalDateTime {
  const offset = offsetMinutes(timeZone, instant);
  const t = new Date(instant + offset * MINUTE_MS);
  return {
    year: t.getUTCFullYear(),
    month: t.getUTCMonth() + 1,
    day: t.getUTCDate(),
    hour: t.getUTCHours(),
    minute: t.getUTCMinutes(),
    second: t.getUTCSeconds(),
  };
}

function nextCronFire(cron: CronSchedule, timeZone: string, after: number): number | null {
  const start = localTimeOf(after, timeZone);
  const years = cron.years ? [...cron.years].sort((a, b) => a - b) : undefined;
  const months = [...cron.months].sort((a, b) => a - b);
  // A wall-clock time on the instant's local date may map to an instant after it (the repeated hour of a
  // fall-back day), so the scan starts at that date and compares instants, not wall-clock times.
  for (let year = start.year; year <= LAST_YEAR; year++) {
    if (years && !cron.years?.has(year)) {
      if (years.every((y) => y < year)) return null;
      continue;
    }
    for (const month of months) {
      if (year === start.year && month < start.month) continue;
      const firstDay = year === start.year && month === start.month ? start.day : 1;
      for (let day = firstDay; day <= daysInMonth(year, month); day++) {
        if (!dayMatches(cron, year, month, day)) continue;
        const sameDate = year === start.year && month === start.month && day === start.day;
        for (const hour of cron.hours) {
          if (sameDate && hour < start.hour) continue;
          for (const minute of cron.minutes) {
            const instant = resolveLocalTime({ year, month, day, hour, minute, second: 0 }, timeZone);
            // Undefined: the time does not exist today (spring forward) and is skipped, as EventBridge does.
            if (instant !== undefined && instant > after) return instant;
          }
        }
      }
    }
  }
  return null;
}

/**
 * The first firing strictly after `instant`, in epoch milliseconds, or null when the schedule never fires
 * again. For a rate, firings are `anchor + k × period` (k ≥ 1); the anchor is the previous firing, and
 * defaults to `instant`.
 */
export function nextFireAfter(schedule: Schedule, timeZone: string, instant: number, anchor = instant): number | null {
  switch (schedule.kind) {
    case 'rate': {
      const periods = Math.max(1, Math.floor((instant - anchor) / schedule.everyMs) + 1);
      return anchor + periods * schedule.everyMs;
    }
    case 'cron':
      return nextCronFire(schedule, timeZone, instant);
    case 'at': {
      const at = resolveLocalTime(schedule.local, timeZone);
      return at !== undefined && at > instant ? at : null;
    }
  }
}

/**
 * The first firing of a schedule that starts at `start` (a rule created or enabled then): a rate fires at once
 * (EventBridge Scheduler starts a rate schedule without StartDate immediately), a cron at its first matching
 * time from `start` on, an at() at its time unless that has passed (then null).
 */
export function firstFireAt(schedule: Schedule, timeZone: string, start: number): number | null {
  if (schedule.kind === 'rate') return start;
  return nextFireAfter(schedule, timeZone, start - 1);
}

/** What is wrong with an at() time in a zone (it falls into a spring-forward gap), or undefined. */
export function atTimeProblem(schedule: Schedule, timeZone: string): string | undefined {
  if (schedule.kind !== 'at' || resolveLocalTime(schedule.local, timeZone) !== undefined) return undefined;
  return `${formatLocal(schedule.local)} does not exist in ${timeZone}: the clocks skip it (daylight saving time)`;
}

function formatLocal(t: LocalDateTime): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${t.year}-${p(t.month)}-${p(t.day)}T${p(t.hour)}:${p(t.minute)}:${p(t.second)}`;
}

/**
 * The shortest time between two firings of a schedule, in milliseconds, or null for an at() schedule (it fires
 * once). For cron it is the smallest gap between two of its times of day, counting the gap from the last time of
 * one day to the first of the next, so a rule that fires at 23:58 and 00:01 counts as every 3 minutes.
 */
export function shortestIntervalMs(schedule: Schedule): number | null {
  if (schedule.kind === 'at') return null;
  if (schedule.kind === 'rate') return schedule.everyMs;
  const times = schedule.hours.flatMap((hour) => schedule.minutes.map((minute) => hour * 60 + minute));
  const sorted = [...new Set(times)].sort((a, b) => a - b);
  const dayMinutes = 24 * 60;
  let shortest = dayMinutes - (sorted[sorted.length - 1] ?? 0) + (sorted[0] ?? 0);
  for (let i = 1; i < sorted.length; i++)
    shortest = Math.min(shortest, (sorted[i] as number) - (sorted[i - 1] as number));
  return shortest * 60_000;
}
