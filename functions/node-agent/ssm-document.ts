import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { z } from 'zod';

/** Our SSM Command document without its script: parameters, the one step, its timeout. */
export const AGENT_DOCUMENT_FILE = new URL('./flink-profiler.ssm.yaml', import.meta.url);
/** The node agent script, the step's runCommand (one element a line), as the SSM agent and local mode run it. */
export const AGENT_SCRIPT_FILE = new URL('./flink-profiler-agent.sh', import.meta.url);

const parameterSchema = z.object({
  type: z.literal('String'),
  description: z.string(),
  default: z.string().optional(),
  allowedValues: z.array(z.string()).optional(),
  allowedPattern: z.string().optional(),
  interpolationType: z.literal('ENV_VAR').optional(),
});

const documentSchema = z.object({
  schemaVersion: z.literal('2.2'),
  description: z.string(),
  parameters: z.record(z.string(), parameterSchema),
  mainSteps: z
    .array(
      z.object({
        action: z.literal('aws:runShellScript'),
        name: z.string().regex(/^[A-Za-z0-9_.-]+$/),
        inputs: z.object({ timeoutSeconds: z.string(), runCommand: z.array(z.string()).min(1) }),
      }),
    )
    .length(1),
});

export type AgentDocument = z.infer<typeof documentSchema>;

/** The script file's lines, as SSM's runCommand holds them (the SSM agent joins them with newlines). */
export function agentScriptLines(): string[] {
  const lines = readFileSync(AGENT_SCRIPT_FILE, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/**
 * Builds the document from the YAML file and the script file, and checks it; throws when it is not the shape
 * this code relies on. `content` is the document as deployed (every key of the YAML file), `text` the same as
 * YAML, `document` the part this code reads.
 */
export function loadAgentDocument(): { text: string; document: AgentDocument; content: Record<string, unknown> } {
  const content = parse(readFileSync(AGENT_DOCUMENT_FILE, 'utf8'));
  const inputs = content?.mainSteps?.[0]?.inputs;
  if (inputs === null || typeof inputs !== 'object')
    throw new Error(`${AGENT_DOCUMENT_FILE.pathname}: its step has no inputs`);
  // The script lives in its own file only: a runCommand in the YAML would be a second, silently replaced copy.
  if ('runCommand' in inputs)
    throw new Error(`${AGENT_DOCUMENT_FILE.pathname}: runCommand comes from ${AGENT_SCRIPT_FILE.pathname}`);
  inputs.runCommand = agentScriptLines();
  // lineWidth 0: no folding, each script line stays one YAML line.
  return { text: stringify(content, { lineWidth: 0 }), document: documentSchema.parse(content), content };
}

/** The document's one step: its name (SSM names the S3 output objects after it) and its script. */
export function agentStep(document: AgentDocument) {
  const [step] = document.mainSteps as [AgentDocument['mainSteps'][number]];
  return { name: step.name, script: step.inputs.runCommand.join('\n'), timeoutSeconds: step.inputs.timeoutSeconds };
}

/** A parameter value the document refuses; nothing runs. */
export class DocumentParameterError extends Error {
  constructor(readonly reasons: string[]) {
    super(`the SSM document refuses its parameters: ${reasons.join('; ')}`);
    this.name = 'DocumentParameterError';
  }
}

/**
 * Checks values against the document as SSM does before sending anything to a node: every parameter
 * known, present or defaulted, and within its allowedValues or allowedPattern. Returns the values with
 * defaults filled in.
 */
export function checkParameters(document: AgentDocument, values: Record<string, string>): Record<string, string> {
  const reasons: string[] = [];
  for (const name of Object.keys(values)) {
    if (!(name in document.parameters)) reasons.push(`${name}: not a parameter of the document`);
  }
  const resolved: Record<string, string> = {};
  for (const [name, spec] of Object.entries(document.parameters)) {
    const value = values[name] ?? spec.default;
    if (value === undefined) {
      reasons.push(`${name}: is required`);
      continue;
    }
    if (spec.allowedValues && !spec.allowedValues.includes(value)) {
      reasons.push(`${name}: must be one of ${spec.allowedValues.join(', ')}`);
    } else if (spec.allowedPattern && !new RegExp(spec.allowedPattern).test(value)) {
      reasons.push(`${name}: must match ${spec.allowedPattern}`);
    } else {
      resolved[name] = value;
    }
  }
  if (reasons.length > 0) throw new DocumentParameterError(reasons);
  return resolved;
}

/** The environment SSM gives the step: `SSM_<name>` for each parameter interpolated as ENV_VAR. */
export function stepEnvironment(document: AgentDocument, resolved: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(document.parameters)
      .filter(([, spec]) => spec.interpolationType === 'ENV_VAR')
      .map(([name]) => [`SSM_${name}`, resolved[name] ?? '']),
  );
}

/** The step's timeout with `{{ parameter }}` references replaced, as SSM does for non-ENV_VAR parameters. */
export function stepTimeoutSeconds(document: AgentDocument, resolved: Record<string, string>): number {
  const text = agentStep(document).timeoutSeconds.replace(
    /\{\{\s*(\w+)\s*\}\}/g,
    (_, name: string) => resolved[name] ?? '',
  );
  const seconds = Number(text);
  if (!Number.isInteger(seconds) || seconds < 1)
    throw new DocumentParameterError([`timeoutSeconds: '${text}' is not a whole number of seconds`]);
  return seconds;
}
