import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface LocalServerProcess {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  /** The API base, `${url}/api/v1`. */
  api: string;
  child: ChildProcess;
  /** Everything the server wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM and wait; `signal` 'SIGKILL' kills it with no chance to clean up. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts the local server as `npm start` does — a separate Node process running functions/local/main.ts — so
 * tests go through its real HTTP port and can kill it. Resolves once it prints where it listens.
 */
export async function startLocalServerProcess(env: Record<string, string>): Promise<LocalServerProcess> {
  const child = spawnLocalServer(env);
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = once(child, 'exit');
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the local server did not start in 60 s:\n${output}`)), 60_000);
    const onData = () => {
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the local server exited before listening:\n${output}`));
    });
  });
  return {
    url,
    api: `${url}/api/v1`,
    child,
    output: () => output,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** `functions/local/main.ts` in a Node process of its own, on a free port unless `env` names one. */
function spawnLocalServer(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'functions/local/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Starts the local server with a configuration it should refuse and waits for it to exit: its exit code and
 * everything it wrote. Fails if it starts listening instead (and stops it).
 */
export async function localServerRefusal(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const child = spawnLocalServer(env);
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk;
    if (/listening on http/.test(output)) child.kill('SIGKILL');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  if (/listening on http/.test(output)) throw new Error(`the local server started instead of refusing:\n${output}`);
  return { code, output };
}
