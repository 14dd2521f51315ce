import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root directory. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Untracked local state (`<repo>/.data`): tools, builds, local-mode data. */
export const dataDir = join(repoRoot, '.data');

/** Where `installAsyncProfiler` puts async-profiler for local mode and tests. */
export const toolsDir = join(dataDir, 'tools');

/** The node agent script that the SSM Command document runs on a Flink node. */
export const nodeAgentScript = join(repoRoot, 'functions', 'node-agent', 'profile-flink-jvm.sh');
