import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root directory. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Untracked local state (`<repo>/.data`): tools, builds, local-mode data. */
export const dataDir = join(repoRoot, '.data');

/** Where `installAsyncProfiler` puts async-profiler for local mode and tests. */
export const toolsDir = join(dataDir, 'tools');

/**
 * The node agent's script, extracted from the SSM document by the e2e global setup, for tests that run the
 * script directly, past the document's parameter checks (to test the script's own).
 */
export const nodeAgentScript = join(dataDir, 'build', 'node-agent', 'profile-flink-jvm.sh');
