import { gzipSync } from 'node:zlib';
import {
  Label,
  Line,
  Location,
  Function as PprofFunction,
  Profile as PprofProfile,
  Sample,
  StringTable,
  ValueType,
} from 'pprof-format';
import type { ProfilingMode } from '../modes.ts';
import type { Profile } from './profile.ts';

/** How a profile was recorded, for the pprof header. */
export interface PprofOptions {
  mode: ProfilingMode;
  durationSeconds: number;
  /** When the recording started, nanoseconds since the epoch. */
  timeNanos: number;
  /** The sampling interval of a time-based mode (CPU, ITIMER, WALL); adds a nanoseconds value to each sample. */
  intervalNanos?: number;
}

/** The pprof name of the time a sample stands for, per mode that samples time. */
const TIME_TYPE: Partial<Record<ProfilingMode, string>> = { CPU: 'cpu', ITIMER: 'cpu', WALL: 'wall' };

/**
 * The profile as pprof: a gzip-compressed protobuf `Profile` (what `go tool pprof` reads). Each distinct stack is
 * one sample whose first value is its count (`samples/count`); with `intervalNanos` in a time-based mode a second
 * value is count × interval (`cpu/nanoseconds` or `wall/nanoseconds`). One function and location per frame name;
 * a `thread` label on each sample whose stack has a thread.
 */
export function toPprof(profile: Profile, options: PprofOptions): Buffer {
  const strings = new StringTable();
  const timeType = TIME_TYPE[options.mode];
  const interval =
    timeType && options.intervalNanos && options.intervalNanos >= 1 ? Math.round(options.intervalNanos) : undefined;
  const sampleType = [new ValueType({ type: strings.dedup('samples'), unit: strings.dedup('count') })];
  if (timeType && interval) {
    sampleType.push(new ValueType({ type: strings.dedup(timeType), unit: strings.dedup('nanoseconds') }));
  }
  const periodType =
    timeType && interval
      ? new ValueType({ type: strings.dedup(timeType), unit: strings.dedup('nanoseconds') })
      : new ValueType({ type: strings.dedup('samples'), unit: strings.dedup('count') });

  const locations = new Map<string, number>();
  const functions: PprofFunction[] = [];
  const locationList: Location[] = [];
  const locationOf = (name: string): number => {
    let id = locations.get(name);
    if (id === undefined) {
      id = locationList.length + 1;
      const nameId = strings.dedup(name);
      functions.push(new PprofFunction({ id, name: nameId, systemName: nameId }));
      locationList.push(new Location({ id, line: [new Line({ functionId: id })] }));
      locations.set(name, id);
    }
    return id;
  };

  const threadKey = strings.dedup('thread');
  const samples = profile.stacks.map((stack) => {
    const locationId: number[] = [];
    // pprof lists a sample's locations leaf first.
    for (let i = stack.frames.length - 1; i >= 0; i--) locationId.push(locationOf(stack.frames[i] as string));
    return new Sample({
      locationId,
      // count × interval can pass 2^53 (a billion samples of 10 ms): that value is a bigint.
      value: interval ? [stack.count, BigInt(stack.count) * BigInt(interval)] : [stack.count],
      label: stack.thread === null ? [] : [new Label({ key: threadKey, str: strings.dedup(stack.thread) })],
    });
  });

  const pprof = new PprofProfile({
    sampleType,
    sample: samples,
    location: locationList,
    function: functions,
    stringTable: strings,
    timeNanos: BigInt(Math.trunc(options.timeNanos)),
    durationNanos: BigInt(Math.round(options.durationSeconds * 1e9)),
    periodType,
    period: interval ?? 1,
    comment: [strings.dedup(`Flink Fleet Profiler, async-profiler mode ${options.mode}`)],
    defaultSampleType: sampleType.length > 1 ? strings.dedup(timeType as string) : 0,
  });
  return gzipSync(pprof.encode());
}
