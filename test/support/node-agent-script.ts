import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { agentStep, loadAgentDocument } from '#node-agent/ssm-document.ts';
import { nodeAgentScript } from './paths.ts';

/**
 * Writes the SSM document's script to `nodeAgentScript` and returns that path. Written aside and renamed into place:
 * bash reads a script as it runs, so rewriting the file in place (another test run's set-up on the same machine)
 * would change a script under way.
 */
export async function writeNodeAgentScript(): Promise<string> {
  await mkdir(dirname(nodeAgentScript), { recursive: true });
  const staged = `${nodeAgentScript}.${process.pid}.tmp`;
  await writeFile(staged, agentStep(loadAgentDocument().document).script, { mode: 0o755 });
  await rename(staged, nodeAgentScript);
  return nodeAgentScript;
}
