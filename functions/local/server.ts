import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { DirectoryArtifactStore } from '#adapters/local/directory-artifact-store.ts';
import { LocalDispatcher } from '#adapters/local/local-dispatcher.ts';
import { ProcDiscovery } from '#adapters/local/proc-discovery.ts';
import { SqliteRuleStore } from '#adapters/local/sqlite-rule-store.ts';
import { SqliteRunStore } from '#adapters/local/sqlite-run-store.ts';
import { MAX_HTML_BYTES } from '#domain/agent-output.ts';
import { storedKindOf } from '#domain/artifacts.ts';
import { DomainError } from '#domain/errors.ts';
import type { Logger } from '#domain/ports.ts';
import { ProfilerService } from '#domain/profiler-service.ts';
import { RuleService } from '#domain/rule-service.ts';
import { API_BASE_PATH, createApp } from '#http/app.ts';
import { ConfigError, ENV, isLinkSecretHex, LINK_SECRET_RULE, type LocalConfig } from '#shared/config.ts';
import { WEB_AUTH_CONFIG_FILE } from '#shared/web-auth-config.ts';
import { resolveAsprof } from './async-profiler.ts';
import { consoleLogger } from './log.ts';
import {
  hostGuard,
  type OwnOrigin,
  originGuard,
  ownOrigin,
  tokenGuard,
  uiLink,
  webAuthConfig,
} from './origin-guard.ts';
import { LocalRuleTicker } from './rule-ticker.ts';
import { UNBUILT_PAGE, WebAssets } from './web-assets.ts';

/** How often local mode settles runs whose agent ended while nobody listened (e.g. across a restart). */
const RECONCILE_INTERVAL_MS = 2000;

export interface LocalServer {
  /** Where the server listens, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** The web UI's link to hand to people: the public URL (else `url`), with `#token=…` when a token is enforced. */
  uiUrl: string;
  profiler: ProfilerService;
  rules: RuleService;
  artifacts: DirectoryArtifactStore;
  close(): Promise<void>;
}

/**
 * The link secret's bytes: the hex of FLINK_PROFILER_LINK_SECRET (checked by the configuration), else the hex kept
 * in the data directory's `link-secret`, made on first start. A kept file that is not such hex stops the start:
 * signing with what is left of it (Buffer's hex decoding stops at the first bad character) would be a weak key.
 */
async function loadLinkSecret(config: LocalConfig, dataDir: string): Promise<Buffer> {
  if (config.linkSecret) return Buffer.from(config.linkSecret, 'hex');
  const file = join(dataDir, 'link-secret');
  const kept = await readFile(file, 'utf8').catch(async () => {
    // `wx`: when two servers start on one directory at once, one writes and both read what it wrote.
    await writeFile(file, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    return readFile(file, 'utf8');
  });
  const hex = kept.trim();
  if (!isLinkSecretHex(hex))
    throw new ConfigError(
      `bad link secret in ${file}: it ${LINK_SECRET_RULE}; fix or delete the file (a new one is made; links handed out ` +
        `before stop working), or set ${ENV.linkSecret}`,
    );
  return Buffer.from(hex, 'hex');
}

/**
 * Local mode: the API, the web UI (web/dist) and the flame-graph links on one origin, over SQLite, a directory
 * and node agents run as child processes on this machine.
 */
export async function startLocalServer(config: LocalConfig, log: Logger = consoleLogger): Promise<LocalServer> {
  const dataDir = resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true });
  const linkSecret = await loadLinkSecret(config, dataDir);
  const asprof = await resolveAsprof(config.asprof, join(dataDir, 'tools'));
  let baseUrl = config.publicUrl?.replace(/\/$/, '') ?? '';

  const runs = new SqliteRunStore(join(dataDir, 'runs.sqlite'));
  const artifacts = new DirectoryArtifactStore(join(dataDir, 'artifacts'), linkSecret, () => baseUrl);
  let profiler: ProfilerService | undefined;
  const discovery = new ProcDiscovery();
  const dispatcher = new LocalDispatcher({
    commandsDir: join(dataDir, 'commands'),
    asprof,
    agentTmpDir: config.agentTmpDir,
    onCommandEnded: (runId, output) => (profiler as ProfilerService).completeRun(runId, output),
    log,
  });
  profiler = new ProfilerService({
    runs,
    artifacts,
    dispatcher,
    discovery,
    settings: config.settings,
    log,
  });
  // Rules live in the same SQLite file as the runs, in a table of their own.
  const ruleStore = new SqliteRuleStore(join(dataDir, 'runs.sqlite'));
  let rules: RuleService | undefined;
  const ruleTicker = new LocalRuleTicker(() => (rules as RuleService).fireDue(), log);
  rules = new RuleService({
    rules: ruleStore,
    scheduler: ruleTicker,
    profiler,
    discovery,
    log,
  });

  // Answer only this server's own Host and Origin, on every path; the port is known once it listens.
  let port = config.port;
  const own: () => OwnOrigin = () => ownOrigin({ host: config.host, port, publicUrl: config.publicUrl });
  const root = new Hono();
  root.use(hostGuard(own));
  root.use(originGuard(own));
  // `/api/v1/*` matches `/api/v1` too, and every path the API's routes match (the same router decides both).
  if (config.token) root.use(`${API_BASE_PATH}/*`, tokenGuard(config.token));
  root.use(`${API_BASE_PATH}/*`, bodyLimit({ maxSize: 64 * 1024 }));
  // How the UI signs in: with the token of its link's fragment, or not at all.
  root.get(`/${WEB_AUTH_CONFIG_FILE}`, (c) =>
    c.json(webAuthConfig(config.token), 200, { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' }),
  );
  root.route('/', createApp({ profiler, rules, log }));
  root.get('/artifacts/:fileName', async (c) => {
    try {
      const artifact = await artifacts.open(c.req.query());
      const { contentType, contentEncoding } = storedKindOf(artifact.fileName);
      const acceptsGzip = /\bgzip\b/.test(c.req.header('accept-encoding') ?? '');
      const disposition = `${artifact.disposition}; filename="${artifact.fileName}"`;
      let body: Buffer;
      try {
        // A client without gzip gets the file decoded here, never more of it than the service stores.
        body =
          acceptsGzip || !contentEncoding
            ? artifact.body
            : gunzipSync(artifact.body, { maxOutputLength: MAX_HTML_BYTES });
      } catch (error) {
        log.error('a stored file does not decode', { fileName: artifact.fileName, error: String(error) });
        return c.json({ errors: [`file: the stored file is damaged or larger than ${MAX_HTML_BYTES} bytes`] }, 500);
      }
      return c.body(new Uint8Array(body), 200, {
        'Content-Type': contentType,
        ...(acceptsGzip && contentEncoding ? { 'Content-Encoding': contentEncoding } : {}),
        'Content-Disposition': disposition,
        'Cache-Control': 'private, no-store',
        'X-Content-Type-Options': 'nosniff',
        // The flame graph runs its own script; the sandbox keeps it away from this origin's API.
        'Content-Security-Policy': 'sandbox allow-scripts',
      });
    } catch (error) {
      if (error instanceof DomainError) return c.json({ errors: error.reasons }, error.status);
      throw error;
    }
  });
  const web = await WebAssets.load();
  if (!web) log.warn('the web UI is not built (web/dist is missing): run npm run build:web; npm start does it for you');
  root.get('/', (c) => web?.serve(c, '/') ?? c.html(UNBUILT_PAGE, 503));
  root.get('/index.html', (c) => web?.serve(c, '/') ?? c.html(UNBUILT_PAGE, 503));
  root.get('/assets/*', (c) => web?.serve(c, c.req.path) ?? c.text('Not Found', 404));
  // The API answers JSON everywhere, unknown endpoints too (the mounted app's own notFound is not consulted here).
  root.notFound((c) =>
    c.req.path.startsWith(`${API_BASE_PATH}/`)
      ? c.json({ errors: [`no such endpoint: ${c.req.method} ${c.req.path}`] }, 404)
      : c.text('Not Found', 404),
  );

  // Settle what a previous run of the server left RUNNING before taking new requests.
  await profiler.reconcile('all');

  const server = serve({ fetch: root.fetch, port: config.port, hostname: config.host });
  await new Promise<void>((resolveListening, reject) => {
    server.once('listening', resolveListening);
    server.once('error', reject);
  });
  port = (server.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  baseUrl ||= url;

  let reconciling = false;
  const reconcileTimer = setInterval(async () => {
    if (reconciling) return;
    reconciling = true;
    try {
      await profiler.reconcile('all');
      const running = await runs.listRunning();
      await dispatcher.prune(new Set(running.flatMap((run) => (run.commandId ? [run.commandId] : []))));
    } catch (error) {
      log.error('reconcile failed', { error: String(error) });
    } finally {
      reconciling = false;
    }
  }, RECONCILE_INTERVAL_MS);
  reconcileTimer.unref();
  // Rules due while the server was down fire now, once each; then on time.
  ruleTicker.start();

  return {
    url,
    uiUrl: uiLink(baseUrl, config.token),
    profiler,
    rules,
    artifacts,
    close: async () => {
      clearInterval(reconcileTimer);
      await ruleTicker.stop();
      await new Promise<void>((done) => server.close(() => done()));
      runs.close();
      ruleStore.close();
    },
  };
}
