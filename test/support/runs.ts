import type { Run } from '#domain/run.ts';

let sequence = 0;

/**
 * A RUNNING run for tests, with fields overridable. Each call gets a fresh id and a trigger time a second
 * after the previous one, so runs made in a row sort newest last.
 */
export function aRun(overrides: Partial<Run> = {}): Run {
  sequence += 1;
  return {
    id: `run-${String(sequence).padStart(4, '0')}-${crypto.randomUUID()}`,
    cluster: 'prod',
    node: 'i-0001',
    role: 'taskmanager',
    mode: 'ITIMER',
    duration: 30,
    status: 'RUNNING',
    triggerTime: 1_800_000_000_000 + sequence * 1000,
    finishedTime: null,
    message: null,
    outputFile: null,
    commandId: null,
    artifactKey: null,
    requestedBy: null,
    ruleId: null,
    ...overrides,
  };
}
