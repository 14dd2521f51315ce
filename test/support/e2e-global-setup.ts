import type { TestProject } from 'vitest/node';
import { installAsyncProfiler } from '#local/async-profiler.ts';
import { compileFakeFlink } from './fake-flink-jvm.ts';
import { writeNodeAgentScript } from './node-agent-script.ts';
import { toolsDir } from './paths.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Absolute path of the asprof that e2e tests run (installed under `.data/tools`). */
    asprofPath: string;
  }
}

/**
 * e2e global setup: installs async-profiler, compiles the fake Flink fixture and extracts the node agent's
 * script from the SSM document, once per test run.
 */
export default async function setup(project: TestProject): Promise<void> {
  const [asprofPath] = await Promise.all([installAsyncProfiler(toolsDir), compileFakeFlink(), writeNodeAgentScript()]);
  project.provide('asprofPath', asprofPath);
}
