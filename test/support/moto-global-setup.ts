import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The local AWS endpoint the integration tier talks to. */
    awsEndpoint: string;
    /** Whether the endpoint is the moto_server this setup started (not one named by AWS_ENDPOINT_URL). */
    awsEndpointIsOwnMoto: boolean;
  }
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function waitUntilUp(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`moto_server did not answer on ${endpoint} within 60 s:\n${output()}`);
}

/**
 * The integration tier's AWS: `AWS_ENDPOINT_URL` when set (LocalStack, a shared moto…), else a moto_server
 * started here on a free loopback port and stopped after the run.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.AWS_ENDPOINT_URL;
  if (given) {
    project.provide('awsEndpoint', given);
    project.provide('awsEndpointIsOwnMoto', false);
    return async () => {};
  }
  const port = await freeLoopbackPort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output = `${output}${chunk}`.slice(-20_000);
  });
  await waitUntilUp(endpoint, child, () => output);
  project.provide('awsEndpoint', endpoint);
  project.provide('awsEndpointIsOwnMoto', true);
  return async () => {
    child.kill('SIGTERM');
  };
}
