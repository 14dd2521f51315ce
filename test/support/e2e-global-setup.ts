import type { TestProject } from 'vitest/node';
import { installAsyncProfiler } from '#local/async-profiler.ts';
import { compileFakeFlink } from './fake-flink-jvm.ts';
import { toolsDir } from './paths.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Absolute path of the asprof that e2e tests run (installed under `.data/tools`). */
    asprofPath: string;
  }
}

/** e2e global setup: installs async-profiler and compiles the fake Flink fixture once per test run. */
export default async function setup(project: TestProject): Promise<void> {
  const [asprofPath] = await Promise.all([installAsyncProfiler(toolsDir), compileFakeFlink()]);
  project.provide('asprofPath', asprofPath);
}
