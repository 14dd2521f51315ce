import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { agentStep, loadAgentDocument } from '#node-agent/ssm-document.ts';
import { nodeAgentScript } from './paths.ts';

/** Writes the SSM document's script to `nodeAgentScript` and returns that path. */
export async function writeNodeAgentScript(): Promise<string> {
  await mkdir(dirname(nodeAgentScript), { recursive: true });
  await writeFile(nodeAgentScript, agentStep(loadAgentDocument().document).script, { mode: 0o755 });
  return nodeAgentScript;
}
