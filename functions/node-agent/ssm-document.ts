import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';

/** Our SSM Command document, the one source of the node agent (the CDK stack deploys this file as it is). */
export const AGENT_DOCUMENT_FILE = new URL('./flink-profiler.ssm.yaml', import.meta.url);

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

/** Reads and checks the document file; throws when it is not the shape this code relies on. */
export function loadAgentDocument(): { text: string; document: AgentDocument } {
  const text = readFileSync(AGENT_DOCUMENT_FILE, 'utf8');
  return { text, document: documentSchema.parse(parse(text)) };
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
