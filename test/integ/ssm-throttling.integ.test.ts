import { SendCommandCommand } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { createAwsClients } from '#adapters/aws/clients.ts';
import { SsmDispatcher } from '#adapters/aws/ssm-dispatcher.ts';
import { createAgentDocument } from '#test/support/aws-resources.ts';
import { aRun } from '#test/support/runs.ts';

/**
 * SendCommand under SSM's rate limits, with the SSM client exactly as the Lambda functions build it. moto
 * never throttles, so a middleware inside the client's retry loop answers the first calls with SSM's
 * ThrottlingException, as SSM does under load; the calls that pass reach moto.
 */
describe('SSM dispatch under throttling', () => {
  it('retries throttled SendCommand calls with backoff and dispatches every run', async () => {
    const documentName = await createAgentDocument();
    const { ssm, s3 } = createAwsClients();
    let attempts = 0;
    ssm.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== SendCommandCommand.name) return next(args);
        attempts += 1;
        if (attempts <= 3) {
          throw Object.assign(new Error('Rate exceeded'), {
            name: 'ThrottlingException',
            $fault: 'client',
            $metadata: { httpStatusCode: 400 },
          });
        }
        return next(args);
      },
      { step: 'deserialize', name: 'injectThrottling' },
    );
    const dispatcher = new SsmDispatcher(ssm, s3, {
      documentName,
      documentVersion: '1',
      outputBucket: 'unused-bucket',
      outputPrefix: 'ssm-output/',
      deliveryTimeoutSeconds: 60,
      graceSeconds: 60,
    });
    const run = aRun({ node: 'i-0123456789abcdef0', triggerTime: Date.now() });
    const started = Date.now();
    const [result] = await dispatcher.dispatch([
      { run, node: { id: run.node, role: 'taskmanager', host: 'h', reachable: true } },
    ]);
    expect(result).toEqual({ runId: run.id, commandId: expect.any(String) });
    expect(attempts).toBe(4);
    // The retries waited between attempts instead of hammering the API.
    expect(Date.now() - started).toBeGreaterThan(50);
  });
});
