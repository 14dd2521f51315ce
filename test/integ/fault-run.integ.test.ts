import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { type FaultRunFigures, printFigures, runFaultRun } from '#test/support/fault-run.ts';

/**
 * The lifecycle under every fault at once (test/support/fault-run.ts): runs through the real handlers on moto, with
 * AWS's behaviour where moto is friendlier. Nothing may be left RUNNING past its deadline, no profile that reached S3
 * may be lost, none may be stored twice, and each run must end as its fault says it must. The test tier runs 60
 * (every fault at least twice); `npm run bench` runs 200 (FAULT_RUN_SIZE) and prints the same figures.
 */
const RUNS = Number(process.env.FAULT_RUN_SIZE ?? 60);

describe(`the fault run (${RUNS} runs)`, () => {
  let figures: FaultRunFigures;

  beforeAll(async () => {
    // Before any handler is imported: the functions keep the clock they were built with.
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    figures = await runFaultRun({
      runs: RUNS,
      clusterSize: Math.ceil(RUNS / 5),
      seed: 20261201,
      asprof: inject('asprofPath'),
    });
    console.log(printFigures(figures));
  }, 1_200_000);

  afterAll(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('creates every run once and settles each one: none stuck, lost or doubled', () => {
    expect(figures.created).toBe(RUNS);
    expect(figures.finished + figures.failed).toBe(RUNS);
    expect({ stuck: figures.stuck, lost: figures.lost, duplicates: figures.duplicates }).toEqual({
      stuck: 0,
      lost: 0,
      duplicates: 0,
    });
  });

  it('ends each run as its fault says: FINISHED exactly when the profile reached S3', () => {
    expect(figures.wrongOutcome).toEqual([]);
    // Every kind of fault was drawn.
    const kinds = Object.keys(figures.faults).map((name) => name.split(/[ ,]/)[0]);
    expect(new Set(kinds)).toEqual(
      new Set(['healthy', 'unmanaged', 'status', 'agent-failed', 'upload-fails-silently']),
    );
  });
});
