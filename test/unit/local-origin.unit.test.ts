import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { hostGuard, originGuard, ownOrigin, tokenGuard, uiLink, webAuthConfig } from '#local/origin-guard.ts';
import { ConfigError, isLoopbackHost, readLocalConfig } from '#shared/config.ts';

/** Local mode answers only its own Host and Origin; off loopback it requires a token; link secrets are real keys. */

const TOKEN = `${'a'.repeat(20)}0123456789._~-`; // 34 characters of the allowed set
const SECRET = 'ab'.repeat(32); // 32 bytes of hex

/** The message readLocalConfig throws for `env`, or undefined when it reads. */
function configError(env: NodeJS.ProcessEnv): string | undefined {
  try {
    readLocalConfig(env);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
}

describe('local configuration: token and bind address', () => {
  it('counts localhost, 127.0.0.0/8 and ::1 as loopback, nothing else', () => {
    for (const host of [
      'localhost',
      'LOCALHOST',
      '127.0.0.1',
      '127.0.0.2',
      '127.255.255.254',
      '::1',
      '::ffff:127.0.0.1',
    ])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of [
      '0.0.0.0',
      '::',
      '192.0.2.1',
      '10.0.0.1',
      '128.0.0.1',
      '127.0.0',
      'localhost.example',
      'myhost',
    ])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it('refuses a non-loopback bind without a token, naming the variable and the rule', () => {
    for (const host of ['0.0.0.0', '192.0.2.1', '::', 'myhost']) {
      const message = configError({ FLINK_PROFILER_HOST: host });
      expect(message, host).toContain('FLINK_PROFILER_TOKEN: is required when FLINK_PROFILER_HOST');
      expect(message, host).toContain('not a loopback address');
      expect(message, host).toContain('at least 32 characters');
    }
    // An empty token is no token.
    expect(configError({ FLINK_PROFILER_HOST: '0.0.0.0', FLINK_PROFILER_TOKEN: '' })).toContain(
      'FLINK_PROFILER_TOKEN: is required',
    );
  });

  it('takes a non-loopback bind with a good token', () => {
    const config = readLocalConfig({ FLINK_PROFILER_HOST: '192.0.2.1', FLINK_PROFILER_TOKEN: TOKEN });
    expect(config).toMatchObject({ host: '192.0.2.1', token: TOKEN });
  });

  it('needs no token on loopback, and checks one when given', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost'])
      expect(readLocalConfig({ FLINK_PROFILER_HOST: host }).token, host).toBeUndefined();
    expect(readLocalConfig({ FLINK_PROFILER_TOKEN: TOKEN }).token).toBe(TOKEN);
  });

  it('refuses short tokens, tokens with other characters and an empty-but-set token', () => {
    for (const token of ['a'.repeat(31), `${'a'.repeat(32)} `, `${'a'.repeat(32)}+/=`, `${'a'.repeat(32)}#x`]) {
      for (const host of ['127.0.0.1', '0.0.0.0'])
        expect(configError({ FLINK_PROFILER_HOST: host, FLINK_PROFILER_TOKEN: token }), `${host} ${token}`).toContain(
          'FLINK_PROFILER_TOKEN: must be at least 32 characters of A-Z, a-z, 0-9',
        );
    }
    expect(configError({ FLINK_PROFILER_TOKEN: '' })).toContain('FLINK_PROFILER_TOKEN: is set but empty');
  });
});

describe('local configuration: link secret', () => {
  it('takes 32 bytes of hex or more, in either case', () => {
    expect(readLocalConfig({ FLINK_PROFILER_LINK_SECRET: SECRET }).linkSecret).toBe(SECRET);
    expect(readLocalConfig({ FLINK_PROFILER_LINK_SECRET: `${SECRET.toUpperCase()}cd` }).linkSecret).toBe(
      `${SECRET.toUpperCase()}cd`,
    );
  });

  it('refuses an empty-but-set, non-hex, odd or shorter secret, naming the variable and the rule', () => {
    const rule = 'FLINK_PROFILER_LINK_SECRET: must be at least 64 hex characters (32 bytes)';
    expect(configError({ FLINK_PROFILER_LINK_SECRET: '' })).toContain(
      'FLINK_PROFILER_LINK_SECRET: is set but empty; it must be at least 64 hex characters (32 bytes)',
    );
    expect(configError({ FLINK_PROFILER_LINK_SECRET: 'ab'.repeat(31) })).toContain(rule);
    expect(configError({ FLINK_PROFILER_LINK_SECRET: `${SECRET}a` })).toContain(rule);
    expect(configError({ FLINK_PROFILER_LINK_SECRET: 'zz'.repeat(32) })).toContain(rule);
    // The old rule took any 16 characters, as text.
    expect(configError({ FLINK_PROFILER_LINK_SECRET: 'correct horse battery staple!!' })).toContain(rule);
  });

  it('reports every bad variable at once, schema and cross-variable rules together', () => {
    const message = configError({ PORT: 'http', FLINK_PROFILER_LINK_SECRET: '', FLINK_PROFILER_HOST: '0.0.0.0' });
    expect(message).toContain('PORT: must be a whole number');
    expect(message).toContain('FLINK_PROFILER_LINK_SECRET: is set but empty');
    expect(message).toContain('FLINK_PROFILER_TOKEN: is required');
  });
});

describe('own origin', () => {
  it('on loopback: the bound address and the loopback names, with the port', () => {
    const own = ownOrigin({ host: '127.0.0.1', port: 8080 });
    expect([...own.hosts].sort()).toEqual(['127.0.0.1:8080', '[::1]:8080', 'localhost:8080']);
    expect([...own.origins].sort()).toEqual(['http://127.0.0.1:8080', 'http://[::1]:8080', 'http://localhost:8080']);
    expect([...ownOrigin({ host: '127.0.0.2', port: 8080 }).hosts]).toContain('127.0.0.2:8080');
  });

  it('leaves out port 80 as the Host header does, and adds the public URL (with its default port too)', () => {
    const own = ownOrigin({ host: '::1', port: 80, publicUrl: 'https://Profiler.Example.com/' });
    expect(own.hosts).toContain('[::1]');
    expect(own.hosts).toContain('localhost');
    expect(own.hosts).toContain('profiler.example.com');
    expect(own.hosts).toContain('profiler.example.com:443');
    expect(own.origins).toContain('https://profiler.example.com');
    expect(own.origins).not.toContain('http://profiler.example.com');
  });

  it('off loopback: only the bound address (and the public URL)', () => {
    const own = ownOrigin({ host: '192.0.2.1', port: 8080, publicUrl: 'http://box.example:9000' });
    expect([...own.hosts].sort()).toEqual(['192.0.2.1:8080', 'box.example:9000']);
    expect([...own.origins].sort()).toEqual(['http://192.0.2.1:8080', 'http://box.example:9000']);
  });

  it('on a wildcard address: every interface address, loopback included', () => {
    const own = ownOrigin({ host: '0.0.0.0', port: 8080 });
    expect(own.hosts).toContain('127.0.0.1:8080');
    expect(own.hosts).toContain('localhost:8080');
    expect(own.hosts).toContain('0.0.0.0:8080');
    expect(own.hosts).not.toContain('evil.example:8080');
  });
});

/** A small app behind the guards, as the local server puts them, answering what it was asked. */
function guardedApp(token?: string) {
  const own = () => ownOrigin({ host: '127.0.0.1', port: 8080 });
  const app = new Hono();
  app.use(hostGuard(own));
  app.use(originGuard(own));
  if (token) app.use('/api/v1/*', tokenGuard(token));
  let changes = 0;
  app.get('/', (c) => c.text('page'));
  app.get('/api/v1/clusters', (c) => c.json({ clusters: [] }));
  app.post('/api/v1/rules', (c) => {
    changes++;
    return c.json({ ok: true });
  });
  const send = async (method: string, path: string, headers: Record<string, string>) => {
    const response = await app.request(`http://127.0.0.1:8080${path}`, { method, headers });
    return { status: response.status, body: (await response.json().catch(() => undefined)) as { errors: string[] } };
  };
  return { send, changes: () => changes };
}

describe('host guard', () => {
  it('refuses a foreign Host with 421 on every path, naming the header', async () => {
    const { send } = guardedApp();
    for (const host of ['evil.example', 'evil.example:8080', '127.0.0.1:8081', '127.0.0.1', 'localhost.:8080']) {
      for (const path of ['/', '/api/v1/clusters', '/artifacts/x.html']) {
        const { status, body } = await send('GET', path, { host });
        expect(status, `${host} ${path}`).toBe(421);
        expect(body.errors[0]).toMatch(/^Host: ".*" is not one of this server's own addresses/);
      }
    }
  });

  it('answers its own names', async () => {
    const { send } = guardedApp();
    for (const host of ['127.0.0.1:8080', 'localhost:8080', 'LOCALHOST:8080', '[::1]:8080'])
      expect((await send('GET', '/api/v1/clusters', { host })).status, host).toBe(200);
  });
});

describe('origin guard', () => {
  const host = '127.0.0.1:8080';

  it('refuses a state-changing request from another origin with 403, before it changes anything', async () => {
    const app = guardedApp();
    for (const origin of ['http://evil.example', 'http://127.0.0.1:8081', 'https://127.0.0.1:8080', 'null']) {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
        const { status, body } = await app.send(method, '/api/v1/rules', { host, origin });
        expect(status, `${method} ${origin}`).toBe(403);
        expect(body.errors[0]).toMatch(/^Origin: ".*" is not this server's origin/);
      }
    }
    expect(app.changes()).toBe(0);
  });

  it('refuses Sec-Fetch-Site: cross-site on state-changing requests', async () => {
    const app = guardedApp();
    const { status, body } = await app.send('POST', '/api/v1/rules', { host, 'sec-fetch-site': 'cross-site' });
    expect(status).toBe(403);
    expect(body.errors[0]).toMatch(/^Sec-Fetch-Site: /);
    expect(app.changes()).toBe(0);
  });

  it('lets same-origin, Origin-less (curl) and reading requests through', async () => {
    const app = guardedApp();
    expect((await app.send('POST', '/api/v1/rules', { host, origin: 'http://127.0.0.1:8080' })).status).toBe(200);
    expect((await app.send('POST', '/api/v1/rules', { host, origin: 'http://localhost:8080' })).status).toBe(200);
    expect((await app.send('POST', '/api/v1/rules', { host, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await app.send('POST', '/api/v1/rules', { host })).status).toBe(200);
    expect(app.changes()).toBe(3 + 1);
    expect((await app.send('GET', '/api/v1/clusters', { host, origin: 'http://evil.example' })).status).toBe(200);
  });
});

describe('token guard', () => {
  const host = '127.0.0.1:8080';

  it('answers 401 with the error shape without the right bearer token', async () => {
    const { send } = guardedApp(TOKEN);
    const refused: Array<Record<string, string>> = [
      {},
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(1)}` },
      { authorization: `Basic ${TOKEN}` },
      { authorization: TOKEN },
      { authorization: 'Bearer ' },
      { authorization: 'Bearer a b' },
    ];
    for (const headers of refused) {
      const { status, body } = await send('GET', '/api/v1/clusters', { host, ...headers });
      expect(status, JSON.stringify(headers)).toBe(401);
      expect(body.errors[0]).toMatch(/^Authorization: /);
    }
  });

  it('lets the right token through, and leaves paths outside the API alone', async () => {
    const { send } = guardedApp(TOKEN);
    expect((await send('GET', '/api/v1/clusters', { host, authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await send('GET', '/api/v1/clusters', { host, authorization: `bearer ${TOKEN}` })).status).toBe(200);
    expect((await send('GET', '/', { host })).status).toBe(200);
  });

  it('tells the UI which kind of sign-in to use, and prints the token only in the fragment', () => {
    expect(webAuthConfig(TOKEN)).toEqual({ kind: 'token' });
    expect(webAuthConfig(undefined)).toEqual({ kind: 'none' });
    expect(uiLink('http://127.0.0.1:8080', TOKEN)).toBe(`http://127.0.0.1:8080/#token=${TOKEN}`);
    expect(uiLink('https://p.example/', undefined)).toBe('https://p.example/');
  });
});
