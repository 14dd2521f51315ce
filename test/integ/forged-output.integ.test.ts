import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { launchFlinkInstance, provisionFunctionEnvironment } from '#test/support/aws-resources.ts';
import { finishedStdoutWith } from '#test/support/hostile-payloads.ts';
import { httpApiEvent, lambdaContext } from '#test/support/lambda-events.ts';
import { runAsSsmAgent } from '#test/support/ssm-agent-stand-in.ts';
import { installSsmAsAws, type SsmAsAws, statusChangeEvents } from '#test/support/ssm-as-aws.ts';

/**
 * Every node's instance role may write every node's output objects (one command covers up to 50 instances, and no
 * IAM policy variable holds the bare instance id: infra/README.md, "Whose output is it"). Job code on one node
 * writes another node's stdout object; the completion must not take it for that node's profile. The agents' own
 * output is replayed through the stand-in (what SSM records of it is what matters here).
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field
type Json = any;
type Handler = (event: unknown, context: unknown) => Promise<Json>;

describe('an output object another node wrote', () => {
  let api: Handler;
  let completion: Handler;
  let bucket: string;
  let ssm: SsmAsAws;
  let honest: string;
  let victim: string;

  beforeAll(async () => {
    [honest, victim] = await Promise.all([
      launchFlinkInstance('forged', 'taskmanager'),
      launchFlinkInstance('forged', 'taskmanager'),
    ]);
    ({ bucket } = await provisionFunctionEnvironment());
    api = (await import('#lambda/api.lambda.ts')).handler as Handler;
    completion = (await import('#lambda/completion.lambda.ts')).handler as Handler;
  });

  beforeEach(() => {
    vi.restoreAllMocks();
    ssm = installSsmAsAws();
    ssm.register(honest);
    ssm.register(victim);
  });

  afterAll(() => vi.restoreAllMocks());

  /** One fan-out over both nodes (one command); each node's agent says what `stdoutOf` gives, SSM records it. */
  async function profileBoth(stdoutOf: (node: string) => string, upload: (node: string) => 'ok' | 'fails-silently') {
    const response = await api(
      httpApiEvent('POST', '/api/v1/clusters/forged/profiler', {
        body: { role: 'taskmanager', mode: 'ITIMER', duration: 1 },
      }),
      lambdaContext,
    );
    const { runs } = JSON.parse(response.body);
    const command = ssm.commandTo(victim);
    for (const node of [honest, victim]) {
      await runAsSsmAgent(command, node, {
        asprof: '/nonexistent/asprof',
        tmpDir: '/tmp',
        upload: upload(node),
        replay: { code: 0, stdout: stdoutOf(node), stderr: '' },
      });
    }
    return { command, runIdOf: (node: string) => runs.find((r: Json) => r.node === node).id as string };
  }

  const stdoutKey = (commandId: string, node: string) =>
    `ssm-output/${commandId}/${node}/awsrunShellScript/profileFlinkJvm/stdout`;

  async function complete(commandId: string, node: string) {
    for (const event of statusChangeEvents(commandId, node)) await completion(event, lambdaContext);
    const response = await api(
      httpApiEvent('GET', `/api/v1/clusters/forged/taskmanagers/${node}/profiler`),
      lambdaContext,
    );
    return JSON.parse(response.body).profilingList[0];
  }

  const profiles = async () =>
    (
      (await new S3Client({}).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'profiles/forged/' })))
        .Contents ?? []
    ).length;

  it('refuses an object that does not start as SSM recorded the node’s own output', async () => {
    const genuine = finishedStdoutWith(gzipSync('<!DOCTYPE html><html>honest node</html>'));
    const victimsOwn =
      'FLINK_PROFILER_RESULT status=FAILED pid=77 mode=ITIMER message=Process 77 exited during profiling\n';
    // The victim's own upload never lands (say, its role lacks the NodePolicy); the honest node's job code writes
    // the victim's key with a profile of its own making, digest and all.
    const { command, runIdOf } = await profileBoth(
      (node) => (node === honest ? genuine : victimsOwn),
      (node) => (node === honest ? 'ok' : 'fails-silently'),
    );
    await new S3Client({}).send(
      new PutObjectCommand({ Bucket: bucket, Key: stdoutKey(command.CommandId as string, victim), Body: genuine }),
    );
    const before = await profiles();

    expect(await complete(command.CommandId as string, honest)).toMatchObject({ status: 'FINISHED' });
    const forged = await complete(command.CommandId as string, victim);
    expect(forged).toMatchObject({ status: 'FAILED', id: runIdOf(victim) });
    expect(forged.message).toMatch(
      new RegExp(
        `^Stop profiler failed\\. The output object in S3 for instance ${victim} is not what its node agent printed`,
      ),
    );
    // Only the honest node's flame graph was stored.
    expect(await profiles()).toBe(before + 1);
  });

  it('refuses an object whose payload differs from the digest in SSM’s copy of the result line', async () => {
    // Long enough that SSM's copy (24,000 characters) ends inside the payload: the rest is swapped.
    const html = `<!DOCTYPE html><html>${randomBytes(40_000).toString('hex')}</html>`;
    const genuine = finishedStdoutWith(gzipSync(html));
    expect(genuine.length).toBeGreaterThan(50_000);
    const { command, runIdOf } = await profileBoth(
      () => genuine,
      () => 'ok',
    );
    const tampered = `${genuine.slice(0, 30_000)}${genuine.slice(30_000, 30_076).split('').reverse().join('')}${genuine.slice(30_076)}`;
    await new S3Client({}).send(
      new PutObjectCommand({ Bucket: bucket, Key: stdoutKey(command.CommandId as string, victim), Body: tampered }),
    );
    const before = await profiles();

    const run = await complete(command.CommandId as string, victim);
    expect(run).toMatchObject({ status: 'FAILED', id: runIdOf(victim) });
    expect(run.message).toMatch(
      /^Stop profiler failed\. The flame graph that arrived is not the one the node agent wrote/,
    );
    expect(await complete(command.CommandId as string, honest)).toMatchObject({ status: 'FINISHED' });
    expect(await profiles()).toBe(before + 1);
  });
});
