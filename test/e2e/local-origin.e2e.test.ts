import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FakeFlinkJvm, startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import {
  type LocalServerProcess,
  localServerRefusal,
  startLocalServerProcess,
} from '#test/support/local-server-process.ts';

/**
 * Local mode answers only its own origin, through the real server process on 127.0.0.1: a foreign Host
 * (DNS rebinding) and a foreign Origin are refused, a token is enforced when set, and a configuration that
 * would expose the server (a non-loopback bind without a token, a weak link secret) stops it at start.
 * Nothing here sends traffic anywhere but 127.0.0.1.
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Json;
}

/**
 * One request with exactly the headers given, `Host` included (fetch cannot set it): what a browser sends for a
 * page of another site whose name resolves to 127.0.0.1.
 */
function raw(url: string, method: string, headers: Record<string, string>, body?: unknown): Promise<RawResponse> {
  const target = new URL(url);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        hostname: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method,
        headers: {
          host: target.host,
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => {
          let parsed: Json = text;
          try {
            parsed = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('local mode answers only its own origin', () => {
  const jvms: FakeFlinkJvm[] = [];
  let dataDir: string;
  let server: LocalServerProcess | undefined;

  const startServer = async (env: Record<string, string> = {}) => {
    const agentTmp = join(dataDir, 'agent-tmp');
    mkdirSync(agentTmp, { recursive: true });
    server = await startLocalServerProcess({
      ASPROF: inject('asprofPath'),
      FLINK_PROFILER_DATA: dataDir,
      FLINK_PROFILER_TMPDIR: agentTmp,
      FLINK_PROFILER_HOST: '127.0.0.1',
      ...env,
    });
    return server;
  };
  const refusal = (env: Record<string, string>) =>
    localServerRefusal({ ASPROF: inject('asprofPath'), FLINK_PROFILER_DATA: dataDir, ...env });

  /** Polls a run until it leaves RUNNING. */
  const waitForRun = async (s: LocalServerProcess, id: string, headers: Record<string, string> = {}) => {
    for (let i = 0; i < 240; i++) {
      const { body } = await raw(`${s.api}/runs/${id}`, 'GET', headers);
      if (body.status !== 'RUNNING') return body;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`run ${id} still RUNNING:\n${s.output()}`);
  };
  const nodeOf = async (s: LocalServerProcess, jvm: FakeFlinkJvm, headers: Record<string, string> = {}) => {
    const { body } = await raw(`${s.api}/clusters/local/nodes`, 'GET', headers);
    const node = body.nodes.find((n: Json) => n.pid === jvm.pid);
    if (!node) throw new Error(`pid ${jvm.pid} not among the nodes: ${JSON.stringify(body)}`);
    return node.id as string;
  };

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'ffp-origin-'));
  });
  afterEach(async () => {
    await server?.stop('SIGKILL');
    server = undefined;
    await Promise.all(jvms.splice(0).map((jvm) => jvm.stop()));
    rmSync(dataDir, { recursive: true, force: true });
    dataDir = mkdtempSync(join(tmpdir(), 'ffp-origin-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('refuses a foreign Host on every path (421, naming the header) and answers its own names', async () => {
    const s = await startServer();
    const port = new URL(s.url).port;
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.nip.example:${port}`]) {
      for (const path of ['/', '/auth.json', '/api/v1/clusters', '/api/v1/openapi.json', '/artifacts/x.html?key=k']) {
        const response = await raw(`${s.url}${path}`, 'GET', { host });
        expect(response.status, `${host} ${path}`).toBe(421);
        expect(response.body.errors[0]).toMatch(/^Host: ".*" is not one of this server's own addresses/);
      }
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const response = await raw(`${s.api}/clusters`, 'GET', { host });
      expect(response.status, host).toBe(200);
      expect(response.body.clusters).toBeDefined();
    }
  });

  it('accepts the host of FLINK_PROFILER_PUBLIC_URL too', async () => {
    const s = await startServer({ FLINK_PROFILER_PUBLIC_URL: 'https://profiler.example.test' });
    expect((await raw(`${s.api}/clusters`, 'GET', { host: 'profiler.example.test' })).status).toBe(200);
    expect((await raw(`${s.api}/clusters`, 'GET', { host: 'other.example.test' })).status).toBe(421);
  });

  it('refuses a state-changing request of another origin (403) and stores nothing; same-origin works', async () => {
    const tm = await startFakeFlinkJvm({ role: 'taskmanager' });
    jvms.push(tm);
    const s = await startServer();
    const node = await nodeOf(s, tm);
    const profile = `${s.api}/clusters/local/taskmanagers/${node}/profiler`;
    const run = { mode: 'ITIMER', duration: 1 };

    const foreign = await raw(profile, 'POST', { origin: 'http://evil.example' }, run);
    expect(foreign.status).toBe(403);
    expect(foreign.body.errors[0]).toMatch(/^Origin: "http:\/\/evil.example" is not this server's origin/);
    const crossSite = await raw(profile, 'POST', { 'sec-fetch-site': 'cross-site' }, run);
    expect(crossSite.status).toBe(403);
    expect(crossSite.body.errors[0]).toMatch(/^Sec-Fetch-Site: /);
    // A flame graph runs sandboxed: its requests say `Origin: null`.
    expect((await raw(profile, 'POST', { origin: 'null' }, run)).status).toBe(403);
    expect((await raw(`${s.api}/runs`, 'GET', {})).body.runs).toEqual([]);

    const same = await raw(profile, 'POST', { origin: s.url, 'sec-fetch-site': 'same-origin' }, run);
    expect(same.status).toBe(200);
    expect((await waitForRun(s, same.body.id)).status).toBe('FINISHED');
    // curl sends no Origin.
    const curl = await raw(profile, 'POST', {}, run);
    expect(curl.status).toBe(200);
    await waitForRun(s, curl.body.id);
    expect((await raw(`${s.api}/runs`, 'GET', {})).body.runs).toHaveLength(2);
  });

  it('with FLINK_PROFILER_TOKEN: API requests need the bearer token (401 without), the UI and auth.json do not', async () => {
    const token = 'e2e-token-0123456789abcdefghijklmnopqrstuvwxyz';
    const s = await startServer({ FLINK_PROFILER_TOKEN: token });

    const refused: Array<Record<string, string>> = [
      {},
      { authorization: `Bearer ${token}x` },
      { authorization: `Basic ${token}` },
    ];
    for (const headers of refused) {
      const response = await raw(`${s.api}/clusters`, 'GET', headers);
      expect(response.status, JSON.stringify(headers)).toBe(401);
      expect(response.body.errors[0]).toMatch(/^Authorization: /);
    }
    expect((await raw(`${s.api}/runs`, 'POST', {}, {})).status).toBe(401);
    const good = await raw(`${s.api}/clusters`, 'GET', { authorization: `Bearer ${token}` });
    expect(good.status).toBe(200);
    expect(good.body.clusters).toBeDefined();

    const auth = await raw(`${s.url}/auth.json`, 'GET', {});
    expect(auth.status).toBe(200);
    expect(auth.body).toEqual({ kind: 'token' });
    expect(auth.headers['cache-control']).toBe('no-store');
    expect([200, 503]).toContain((await raw(`${s.url}/`, 'GET', {})).status);
    // The UI's link carries the token in the fragment, the only place a browser never sends it from.
    await expect.poll(() => s.output(), { timeout: 5000 }).toContain(`Open the web UI: ${s.url}/#token=${token}`);
  });

  it('keeps flame-graph links working with a token: they are signed, and signed with the hex bytes of the secret', async () => {
    const token = 'e2e-token-0123456789abcdefghijklmnopqrstuvwxyz';
    const secret = '0f'.repeat(40);
    const tm = await startFakeFlinkJvm({ role: 'taskmanager' });
    jvms.push(tm);
    const s = await startServer({ FLINK_PROFILER_TOKEN: token, FLINK_PROFILER_LINK_SECRET: secret });
    const authorization = { authorization: `Bearer ${token}` };
    const node = await nodeOf(s, tm, authorization);
    const created = await raw(`${s.api}/clusters/local/taskmanagers/${node}/profiler`, 'POST', authorization, {
      mode: 'ITIMER',
      duration: 1,
    });
    expect(created.status).toBe(200);
    const run = await waitForRun(s, created.body.id, authorization);
    expect(run.status).toBe('FINISHED');

    const link = new URL(run.url);
    const { key, disposition, expires, signature } = Object.fromEntries(link.searchParams) as Record<string, string>;
    const signed = (keyBytes: Buffer) =>
      createHmac('sha256', keyBytes).update(`${key}\n${disposition}\n${expires}`).digest('hex');
    expect(signature).toBe(signed(Buffer.from(secret, 'hex')));
    expect(signature).not.toBe(signed(Buffer.from(secret, 'utf8')));
    const graph = await raw(run.url, 'GET', {});
    expect(graph.status).toBe(200);
    expect(String(graph.body)).toContain('async-profiler');
    // The same link under a foreign name is refused like everything else.
    expect((await raw(run.url, 'GET', { host: 'evil.example' })).status).toBe(421);
  });

  it('answers auth.json {"kind":"none"} on loopback without a token', async () => {
    const s = await startServer();
    const auth = await raw(`${s.url}/auth.json`, 'GET', {});
    expect(auth.body).toEqual({ kind: 'none' });
    expect(auth.headers['cache-control']).toBe('no-store');
  });

  it('refuses to start on a non-loopback address without a token (exit 2, naming the variable)', async () => {
    // 192.0.2.1 is TEST-NET-1: never this machine's, and the configuration check comes before any bind.
    const { code, output } = await refusal({ FLINK_PROFILER_HOST: '192.0.2.1' });
    expect(code).toBe(2);
    expect(output).toContain('FLINK_PROFILER_TOKEN: is required when FLINK_PROFILER_HOST (192.0.2.1)');
  });

  it('refuses to start with an empty, non-hex or short link secret, or a bad kept one (exit 2, naming the rule)', async () => {
    for (const secret of ['', 'g'.repeat(64), 'ab'.repeat(31)]) {
      const { code, output } = await refusal({ FLINK_PROFILER_LINK_SECRET: secret });
      expect(code, JSON.stringify(secret)).toBe(2);
      expect(output).toContain('FLINK_PROFILER_LINK_SECRET: ');
      expect(output).toContain('at least 64 hex characters (32 bytes)');
    }
    for (const kept of ['not hex at all', 'ab'.repeat(16)]) {
      writeFileSync(join(dataDir, 'link-secret'), kept);
      const { code, output } = await refusal({});
      expect(code, kept).toBe(2);
      expect(output).toContain(`bad link secret in ${join(dataDir, 'link-secret')}`);
    }
  });
});
