import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { LocalDispatcher } from '#adapters/local/local-dispatcher.ts';
import type { Run } from '#domain/run.ts';
import { AGENT_STEP_NAME, agentParameters, EXECUTION_MARGIN_SECONDS } from '#node-agent/agent-parameters.ts';
import {
  AGENT_DOCUMENT_FILE,
  AGENT_SCRIPT_FILE,
  agentStep,
  checkParameters,
  DocumentParameterError,
  loadAgentDocument,
  stepEnvironment,
  stepTimeoutSeconds,
} from '#node-agent/ssm-document.ts';
import { silentLog, TM } from '#test/support/unit-fakes.ts';

const { document, text } = loadAgentDocument();
const valid = {
  runId: 'run-1',
  role: 'taskmanager',
  mode: 'ITIMER',
  duration: '30',
  pid: '4242',
  executionTimeout: '150',
};

const SHELL_TEXT = ['$(reboot)', '`id`', 'a;b', 'a|b', 'a&b', 'a>b', 'a b', "a'b", 'a"b', 'a\nb', '*', '../x'];
/** Whole values that would read as an option or a path if a script passed them on. */
const OPTION_LIKE = ['-rf', '--help', '/etc/passwd'];

function reasonsOf(values: Record<string, string>): string[] {
  try {
    checkParameters(document, values);
    return [];
  } catch (error) {
    if (error instanceof DocumentParameterError) return error.reasons;
    throw error;
  }
}

describe('our SSM Command document', () => {
  it('is schema 2.2 with one shell step whose timeout is the execution timeout parameter', () => {
    expect(document.schemaVersion).toBe('2.2');
    expect(agentStep(document).name).toBe(AGENT_STEP_NAME);
    expect(stepTimeoutSeconds(document, checkParameters(document, valid))).toBe(150);
  });

  it('types every parameter with allowedValues or allowedPattern, and passes them as environment variables', () => {
    for (const [name, spec] of Object.entries(document.parameters)) {
      expect(spec.allowedValues ?? spec.allowedPattern, name).toBeDefined();
      // executionTimeout is substituted into timeoutSeconds by SSM, not read by the script.
      expect(spec.interpolationType, name).toBe(name === 'executionTimeout' ? undefined : 'ENV_VAR');
    }
    expect(stepEnvironment(document, checkParameters(document, valid))).toEqual({
      SSM_runId: 'run-1',
      SSM_role: 'taskmanager',
      SSM_mode: 'ITIMER',
      SSM_duration: '30',
      SSM_pid: '4242',
    });
  });

  for (const name of Object.keys(valid)) {
    it(`refuses shell text in ${name} before anything runs`, () => {
      for (const text of [...SHELL_TEXT, ...OPTION_LIKE]) {
        expect(reasonsOf({ ...valid, [name]: text }), JSON.stringify(text)).toEqual([
          expect.stringMatching(new RegExp(`^${name}: must `)),
        ]);
      }
      for (const text of SHELL_TEXT) {
        expect(reasonsOf({ ...valid, [name]: `${valid[name as keyof typeof valid]}${text}` }).length, text).toBe(1);
      }
    });
  }

  it('bounds the duration to 1..3600 and the pid to positive digits, empty meaning "find it"', () => {
    expect(reasonsOf({ ...valid, duration: '1' })).toEqual([]);
    expect(reasonsOf({ ...valid, duration: '3600' })).toEqual([]);
    for (const bad of ['0', '3601', '030', '-1', '1.5', ''])
      expect(reasonsOf({ ...valid, duration: bad }), bad).toHaveLength(1);
    expect(reasonsOf({ ...valid, pid: '' })).toEqual([]);
    for (const bad of ['0', '012', '12345678901']) expect(reasonsOf({ ...valid, pid: bad }), bad).toHaveLength(1);
  });

  it('requires the parameters that have no default, and refuses unknown ones', () => {
    expect(reasonsOf({ role: 'taskmanager', mode: 'WALL', duration: '5', evil: 'x' }).sort()).toEqual([
      'evil: not a parameter of the document',
      'runId: is required',
    ]);
  });

  it('accepts the parameters the services send for every run', () => {
    const run = { role: 'jobmanager', mode: 'ALLOC', duration: 3600 } as const;
    const parameters = checkParameters(document, agentParameters(run, crypto.randomUUID()));
    expect(stepTimeoutSeconds(document, parameters)).toBe(3600 + EXECUTION_MARGIN_SECONDS);
    expect(parameters.pid).toBe('');
  });

  it('runs the agent script file as it is: runCommand holds its lines, and the deployed text holds the same', () => {
    const file = readFileSync(AGENT_SCRIPT_FILE, 'utf8');
    expect(file.endsWith('\n')).toBe(true);
    const lines = file.slice(0, -1).split('\n');
    expect(lines[0]).toBe('#!/usr/bin/env bash');
    expect(document.mainSteps[0]?.inputs.runCommand).toEqual(lines);
    expect(parse(text).mainSteps[0].inputs.runCommand).toEqual(lines);
    expect(agentStep(document).script).toBe(lines.join('\n'));
    // SSM would replace a `{{ name }}` in runCommand with a parameter's text, which local mode does not do.
    expect(lines.filter((line) => line.includes('{{'))).toEqual([]);
  });

  it('keeps the script out of the YAML file: its step has no runCommand of its own', () => {
    expect(parse(readFileSync(AGENT_DOCUMENT_FILE, 'utf8')).mainSteps[0].inputs).not.toHaveProperty('runCommand');
  });

  it('holds a script that bash can parse', () => {
    const result = spawnSync('bash', ['-n'], { input: agentStep(document).script, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('is what the local dispatcher checks: a refused run starts no process and leaves nothing behind', async () => {
    const commandsDir = mkdtempSync(join(tmpdir(), 'ffp-commands-'));
    const dispatcher = new LocalDispatcher({
      commandsDir,
      asprof: '/nonexistent/asprof',
      onCommandEnded: async () => {},
      log: silentLog,
    });
    const run = { id: 'run;reboot', role: 'taskmanager', mode: 'ITIMER', duration: 5 } as Run;
    const [result] = await dispatcher.dispatch([{ run, node: TM }]);
    expect(result).toEqual({ runId: 'run;reboot', error: expect.stringContaining('runId: must match') });
    expect(existsSync(commandsDir) ? readdirSync(commandsDir) : []).toEqual([]);
  });
});
