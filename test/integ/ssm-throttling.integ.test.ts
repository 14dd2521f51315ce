import { SendCommandCommand } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { createAwsClients } from '#adapters/aws/clients.ts';
import { SsmDispatcher } from '#adapters/aws/ssm-dispatcher.ts';
import { createAgentDocument } from '#test/support/aws-resources.ts';
import { aRun } from '#test/support/runs.ts';

/**
 * SendCommand under SSM's rate limits, with the SSM client exactly as the Lambda functions build it. moto
 * never throttles, so a middleware inside the client's retry loop answers the first calls with SSM's
 * ThrottlingException (or another error), as SSM does under load; the calls that pass reach moto.
 */
describe('SSM dispatch under throttling', () => {
  /** The dispatcher on a client whose first `failures` SendCommand attempts fail with `error`; counts the attempts. */
  async function dispatcherFailing(failures: number, error: () => Error) {
    const documentName = await createAgentDocument();
    const { ssm, s3 } = createAwsClients();
    const attempts = { count: 0 };
    ssm.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== SendCommandCommand.name) return next(args);
        attempts.count += 1;
        if (attempts.count <= failures) throw error();
        return next(args);
      },
      { step: 'deserialize', name: 'injectFailures' },
    );
    const dispatcher = new SsmDispatcher(ssm, s3, {
      documentName,
      documentVersion: '1',
      outputBucket: 'unused-bucket',
      outputPrefix: 'ssm-output/',
      deliveryTimeoutSeconds: 60,
      graceSeconds: 60,
    });
    return { dispatcher, attempts };
  }
  const aRequest = () => {
    const run = aRun({ node: 'i-0123456789abcdef0', triggerTime: Date.now() });
    return { run, node: { id: run.node, role: 'taskmanager' as const, host: 'h', reachable: true } };
  };

  it('retries throttled SendCommand calls with backoff and dispatches every run', async () => {
    const throttling = () =>
      Object.assign(new Error('Rate exceeded'), {
        name: 'ThrottlingException',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
      });
    const { dispatcher, attempts } = await dispatcherFailing(3, throttling);
    const request = aRequest();
    const started = Date.now();
    const [result] = await dispatcher.dispatch([request]);
    expect(result).toEqual({ runId: request.run.id, commandId: expect.any(String) });
    expect(attempts.count).toBe(4);
    // The retries waited between attempts instead of hammering the API.
    expect(Date.now() - started).toBeGreaterThan(50);
  });

  it('does not send again a SendCommand that failed with a server error (it may have run), and fails its run', async () => {
    const serverError = () =>
      Object.assign(new Error('Internal error'), {
        name: 'InternalServerError',
        $fault: 'server',
        $metadata: { httpStatusCode: 500 },
      });
    const { dispatcher, attempts } = await dispatcherFailing(1, serverError);
    const request = aRequest();
    const [result] = await dispatcher.dispatch([request]);
    expect(result).toEqual({
      runId: request.run.id,
      error: 'SSM SendCommand failed: InternalServerError: Internal error',
    });
    expect(attempts.count).toBe(1);
  });
});
