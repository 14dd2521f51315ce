import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CALLER } from '#domain/access.ts';
import type { FlinkNode } from '#domain/ports.ts';
import { callerFromJwtClaims, DEFAULT_ADMIN_GROUP } from '#http/caller.ts';
import { type Browser, launchChromium } from '#test/support/browser.ts';
import {
  type ApiRequestRecord,
  type FleetServer,
  gatewayClaims,
  jwtAuthorizer,
  startFleetServer,
} from '#test/support/oidc-fleet-server.ts';
import { OidcProvider } from '#test/support/oidc-provider.ts';
import { repoRoot } from '#test/support/paths.ts';
import { buildWeb } from '../../web/build.ts';

/**
 * The web UI's sign-in in headless Chromium, for real: each user's browser is sent to an OAuth 2.0 / OpenID
 * Connect server on loopback (oauth2-mock-server, made as strict as Cognito's hosted sign-in: see
 * oidc-provider.ts), comes back with a code, trades it for signed JWTs with PKCE, and calls the real API app,
 * whose JWT authorizer stand-in checks every token's signature, issuer and expiry. No token is injected.
 * Alice is in team-a, which owns cluster alpha; Bob in team-b, which owns beta.
 */

const CLIENT_ID = 'ffp-web-sign-in-test';
/** Short-lived access tokens, so that refreshing happens (and must work) within the test. */
const ACCESS_TOKEN_SECONDS = 10;
const SCOPES = ['openid', 'profile'];
/** Where the UI keeps its tokens for the tab (web/src/auth.ts). */
const TOKENS_KEY = 'flink-fleet-profiler:tokens';
const SCREENSHOTS = join(repoRoot, 'test-output', 'web-sign-in');

type User = 'alice' | 'bob';
const USERS: Record<User, string[]> = { alice: ['team-a'], bob: ['team-b'] };
const OWN: Record<User, { cluster: string; taskManager: string }> = {
  alice: { cluster: 'alpha', taskManager: 'i-0a0000000000000a2' },
  bob: { cluster: 'beta', taskManager: 'i-0b0000000000000b2' },
};

const node = (id: string, role: FlinkNode['role'], team: string): FlinkNode => ({
  id,
  role,
  host: `ip-10-0-0-${id.slice(-2)}.ec2.internal`,
  reachable: true,
  teams: [team],
});
/** Two clusters of two teams, as their instances' cluster, role and team tags would make them. */
const CLUSTERS: Record<string, FlinkNode[]> = {
  alpha: [node('i-0a0000000000000a1', 'jobmanager', 'team-a'), node(OWN.alice.taskManager, 'taskmanager', 'team-a')],
  beta: [node('i-0b0000000000000b1', 'jobmanager', 'team-b'), node(OWN.bob.taskManager, 'taskmanager', 'team-b')],
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const clusterIds = (page: Page) =>
  page.locator('#clusters tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-cluster')));
const ruleNames = (page: Page) =>
  page.locator('#rules tbody tr').evaluateAll((rows) => rows.map((row) => row.querySelector('td')?.textContent));
const alerts = (page: Page) => page.locator('main [role=alert]:visible').allTextContents();
/** The page's globals these tests read (the root project has no DOM types). */
type PageGlobals = { sessionStorage: { getItem(key: string): string | null }; location: { hash: string } };
const storedTokens = (page: Page) =>
  page.evaluate((key) => (globalThis as unknown as PageGlobals).sessionStorage.getItem(key), TOKENS_KEY);

/** Calls the API from the page, with the access token the tab signed in with: what a script of the user would do. */
async function callApiAs(page: Page, method: string, path: string, body?: unknown) {
  return page.evaluate(
    async ({ key, method, path, body }) => {
      const storage = (globalThis as unknown as PageGlobals).sessionStorage;
      const { accessToken } = JSON.parse(storage.getItem(key) ?? '{}') as { accessToken?: string };
      const response = await fetch(`api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    },
    { key: TOKENS_KEY, method, path, body },
  );
}

describe('sign-in in the web UI (code flow with PKCE) against an OIDC server on loopback', () => {
  let oidc: OidcProvider;
  let fleet: FleetServer;
  const browsers = {} as Record<User, Browser>;
  const pages = {} as Record<User, Page>;

  /** Opens `route` in a new tab of the user's own browser: the UI sends it through the sign-in and back. */
  const signIn = async (user: User, route: string): Promise<Page> => {
    oidc.nextUser = user;
    const page = await browsers[user].context.newPage();
    // `commit`: the page leaves for the sign-in at once, which a wait for its load would take for a failure.
    await page.goto(`${fleet.url}/${route}`, { waitUntil: 'commit' });
    await page.locator('#session-user').waitFor();
    await page.locator('html[data-ready=true]').waitFor();
    return page;
  };

  /** The API requests sent with one of the access tokens issued to `user`. */
  const requestsWithTokensOf = (user: User, since = 0): ApiRequestRecord[] => {
    const tokens = new Set(oidc.tokenRequests.filter((r) => r.user === user).map((r) => `Bearer ${r.accessToken}`));
    return fleet.requests.slice(since).filter((r) => r.authorization !== undefined && tokens.has(r.authorization));
  };

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    await buildWeb();
    oidc = await OidcProvider.start({ clientId: CLIENT_ID, users: USERS, accessTokenSeconds: ACCESS_TOKEN_SECONDS });
    fleet = await startFleetServer({
      auth: (url) => ({
        kind: 'cognito',
        clientId: CLIENT_ID,
        authorizeUrl: oidc.endpoints.authorize,
        tokenUrl: oidc.endpoints.token,
        logoutUrl: oidc.endpoints.endSession,
        redirectUri: `${url}/`,
        scopes: SCOPES,
      }),
      authorizer: jwtAuthorizer({ issuer: oidc.issuer, jwksUri: oidc.endpoints.jwks, clientId: CLIENT_ID }),
      caller: (c) => callerFromJwtClaims(gatewayClaims(c), { adminGroup: DEFAULT_ADMIN_GROUP }),
      clusters: CLUSTERS,
      teams: true,
      // The page trades the code at the token endpoint: its CSP must let it connect there.
      connectSrc: [oidc.origin],
    });
    oidc.redirectUri = `${fleet.url}/`;
    // One browser per user: nothing of one session can leak into the other's.
    [browsers.alice, browsers.bob] = await Promise.all([launchChromium(), launchChromium()]);
  });

  afterAll(async () => {
    await Promise.all(Object.values(browsers).map((browser) => browser.close()));
    await fleet?.close();
    await oidc?.stop();
  });

  it('signs each user in through the redirect (code, state, PKCE S256) and returns to the address first asked for', async () => {
    for (const [user, route] of [
      ['alice', `#/clusters/${OWN.alice.cluster}`],
      ['bob', '#/'],
    ] as const) {
      const authorizeBefore = oidc.authorizeRequests.length;
      const page = await signIn(user, route);
      pages[user] = page;

      // One trip to /authorize, with the code flow's parameters and a challenge, not the verifier.
      expect(oidc.authorizeRequests.length).toBe(authorizeBefore + 1);
      const authorize = oidc.authorizeRequests[authorizeBefore] as URLSearchParams;
      expect(Object.fromEntries(authorize)).toMatchObject({
        response_type: 'code',
        client_id: CLIENT_ID,
        redirect_uri: `${fleet.url}/`,
        scope: SCOPES.join(' '),
        code_challenge_method: 'S256',
      });
      expect(authorize.get('state')).toMatch(/^[A-Za-z0-9_-]{16,}$/);
      // The code went back to the token endpoint with the verifier whose SHA-256 is the challenge.
      const exchange = oidc.grants('authorization_code', user).at(-1);
      expect(exchange?.form).toMatchObject({ client_id: CLIENT_ID, redirect_uri: `${fleet.url}/` });
      const verifier = exchange?.form.code_verifier ?? '';
      expect(verifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/);
      expect(authorize.get('code_challenge')).toBe(createHash('sha256').update(verifier).digest('base64url'));
      expect(authorize.get('code_challenge')).not.toBe(verifier);

      // Back where the user asked to go, with the code and state gone from the address.
      expect(page.url()).toBe(`${fleet.url}/${route}`);
      expect(await page.locator('#session-user').textContent()).toBe(user);
      expect(await page.locator('#session-teams').textContent()).toBe(USERS[user].join(', '));
      // The API got the access token (Cognito's `token_use: access`), and no page asked for a pasted one.
      const sent = requestsWithTokensOf(user);
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.some((r) => r.authorization === `Bearer ${exchange?.accessToken}`)).toBe(true);
      expect(sent.every((r) => r.claims?.token_use === 'access' && r.claims.username === user)).toBe(true);
      expect(await page.locator('input[type=password]').count()).toBe(0);
    }
    await pages.alice.screenshot({ path: join(SCREENSHOTS, 'signed-in.png') });
  });

  it('refuses an answer from the sign-in service whose state is not the one this tab sent', async () => {
    const page = await browsers.alice.context.newPage();
    // A real code for this tab's own challenge, but with another state: what a forged callback link looks like.
    await page.route(
      (url) => url.href.startsWith(oidc.endpoints.authorize),
      async (route) => {
        const forged = new URL(route.request().url());
        forged.searchParams.set('state', 'forged-state-0123456789');
        await route.fulfill({ response: await route.fetch({ url: forged.href, maxRedirects: 0 }) });
      },
    );
    const tokenRequestsBefore = oidc.tokenRequests.length;
    oidc.nextUser = 'alice';
    await page.goto(`${fleet.url}/#/`, { waitUntil: 'commit' });
    await page.getByRole('heading', { name: 'Sign-in did not complete' }).waitFor();
    expect(oidc.tokenRequests.length).toBe(tokenRequestsBefore);
    expect(await storedTokens(page)).toBeNull();
    expect(page.url()).toBe(`${fleet.url}/#/`);
    await page.close();
  });

  it("turns a sign-in begun outside the UI (the stack's SignInUrl) into one of its own, without using that code", async () => {
    const page = await browsers.alice.context.newPage();
    const authorizeBefore = oidc.authorizeRequests.length;
    const exchangesBefore = oidc.tokenRequests.length;
    oidc.nextUser = 'alice';
    // A link made elsewhere: its state and challenge are no tab's, so its code can never be traded by the UI.
    const link = new URL(oidc.endpoints.authorize);
    for (const [name, value] of Object.entries({
      response_type: 'code',
      client_id: CLIENT_ID,
      redirect_uri: `${fleet.url}/`,
      scope: 'openid',
      state: 'made-outside-the-ui',
      code_challenge: 'A'.repeat(43),
      code_challenge_method: 'S256',
    }))
      link.searchParams.set(name, value);
    await page.goto(link.href, { waitUntil: 'commit' });
    await page.locator('#clusters tbody tr').first().waitFor();
    expect(await clusterIds(page)).toEqual([OWN.alice.cluster]);
    expect(oidc.authorizeRequests.length).toBe(authorizeBefore + 2);
    expect(oidc.tokenRequests.length).toBe(exchangesBefore + 1);
    expect(await storedTokens(page)).not.toBeNull();
    await page.close();
  });

  it('shows each user only the clusters of their own team in the fleet view', async () => {
    for (const user of ['alice', 'bob'] as const) {
      const page = pages[user];
      await page.goto(`${fleet.url}/#/`);
      await page.locator('#clusters tbody tr').first().waitFor();
      expect(await clusterIds(page)).toEqual([OWN[user].cluster]);
    }
  });

  it("starts a profile on the user's own cluster's TaskManager with Create Profiling Instance", async () => {
    for (const user of ['alice', 'bob'] as const) {
      const { cluster, taskManager } = OWN[user];
      const page = pages[user];
      await page.goto(`${fleet.url}/#/clusters/${cluster}`);
      await page
        .locator(`#nodes tbody tr[data-node="${taskManager}"]`)
        .getByRole('link', { name: 'Open profiler' })
        .click();
      await page.getByRole('heading', { level: 1, name: `TaskManager ${taskManager} · cluster ${cluster}` }).waitFor();
      await page.getByLabel('Profiling Duration').fill('5');
      await page.getByRole('button', { name: 'Create Profiling Instance' }).click();

      const row = page.locator('#runs tbody tr').first();
      await expect.poll(() => row.getAttribute('data-status'), { timeout: 20_000 }).toBe('FINISHED');
      expect(await row.locator('a[data-link=open]').count()).toBe(1);
    }
    // What reached "SSM": one command per user, each on their own TaskManager, on their behalf.
    expect(fleet.ssm.sent.map(({ run, node }) => [run.cluster, node.id, run.requestedBy])).toEqual([
      [OWN.alice.cluster, OWN.alice.taskManager, 'alice'],
      [OWN.bob.cluster, OWN.bob.taskManager, 'bob'],
    ]);
  });

  it("answers the other team's cluster page with not found, and profiles nothing there", async () => {
    const page = pages.alice;
    const since = fleet.requests.length;
    await page.goto(`${fleet.url}/#/clusters/${OWN.bob.cluster}`);
    await expect
      .poll(() => alerts(page))
      .toContainEqual(expect.stringContaining(`cluster '${OWN.bob.cluster}' not found`));
    expect(await page.locator('#nodes tbody tr').count()).toBe(0);

    const panel = `#/clusters/${OWN.bob.cluster}/taskmanagers/${OWN.bob.taskManager}/profiler`;
    await page.goto(`${fleet.url}/${panel}`);
    await expect.poll(() => alerts(page)).toContainEqual(expect.stringContaining('not found'));
    await page.getByRole('button', { name: 'Create Profiling Instance' }).click();
    await expect.poll(() => page.locator('#create-error').textContent()).toContain('not found');
    expect(
      fleet.ssm.sent.filter(({ run }) => run.cluster === OWN.bob.cluster).map(({ run }) => run.requestedBy),
    ).toEqual(['bob']);
    // Every one of those answers was the API's 404, not a refused token (a poll still on its way has none yet).
    const toBeta = requestsWithTokensOf('alice', since).filter(
      (r) => r.path.includes(`/clusters/${OWN.bob.cluster}`) && r.status !== undefined,
    );
    expect(toBeta.length).toBeGreaterThan(0);
    expect(new Set(toBeta.map((r) => r.status))).toEqual(new Set([404]));
  });

  it("shows each user only their own team's rules", async () => {
    // Alice through the UI's form: it offers only her team's cluster.
    const alice = pages.alice;
    await alice.goto(`${fleet.url}/#/rules/new`);
    const clusterField = alice.getByLabel('Cluster');
    await clusterField.waitFor();
    expect(await clusterField.locator('option').allTextContents()).toEqual([OWN.alice.cluster]);
    await alice.getByLabel('Name').fill('alpha hourly');
    await alice.getByLabel('Time zone').fill('UTC');
    await alice.getByRole('button', { name: 'Create rule' }).click();
    await expect
      .poll(() => alice.evaluate(() => (globalThis as unknown as PageGlobals).location.hash))
      .toMatch(/^#\/rules\/[0-9a-f-]{36}$/);

    // Bob through the API with his own token; on Alice's cluster he is told it does not exist.
    const rule = (cluster: string, name: string) => ({
      name,
      cluster,
      target: { role: 'taskmanager' },
      mode: 'ITIMER',
      duration: 30,
      schedule: 'rate(1 hour)',
      timezone: 'UTC',
      enabled: true,
    });
    const created = await callApiAs(pages.bob, 'POST', '/rules', rule(OWN.bob.cluster, 'beta hourly'));
    expect(created.status).toBe(201);
    const foreign = await callApiAs(pages.bob, 'POST', '/rules', rule(OWN.alice.cluster, 'not mine'));
    expect(foreign.status).toBe(404);

    for (const [user, names] of [
      ['alice', ['alpha hourly']],
      ['bob', ['beta hourly']],
    ] as const) {
      const page = pages[user];
      await page.goto(`${fleet.url}/#/rules`);
      await page.locator('#rules tbody tr').first().waitFor();
      expect(await ruleNames(page)).toEqual(names);
    }
    // Bob's rule's own page is not found for Alice.
    await alice.goto(`${fleet.url}/#/rules/${created.body.id}`);
    await expect.poll(() => alerts(alice)).toContainEqual(expect.stringContaining('not found'));
  });

  it('refreshes the access token shortly before it expires, with no request refused meanwhile', async () => {
    const page = pages.alice;
    await page.goto(`${fleet.url}/#/`);
    await page.locator('#clusters tbody tr').first().waitFor();
    const since = fleet.requests.length;
    const refreshesBefore = oidc.grants('refresh_token', 'alice').length;

    // The fleet view polls every 3 s: over one and a half token lifetimes, each request must go through.
    await sleep(ACCESS_TOKEN_SECONDS * 1500);
    const refreshes = oidc.grants('refresh_token', 'alice').slice(refreshesBefore);
    expect(refreshes.length).toBeGreaterThan(0);
    expect(refreshes.every((r) => Object.keys(r.form).sort().join() === 'client_id,grant_type,refresh_token')).toBe(
      true,
    );
    const polled = requestsWithTokensOf('alice', since);
    expect(polled.length).toBeGreaterThanOrEqual(4);
    expect(polled.filter((r) => r.status === 401)).toEqual([]);
    // The refreshed tokens are the ones in use, and the view still shows its data without an error.
    const refreshed = new Set(refreshes.map((r) => `Bearer ${r.accessToken}`));
    expect(polled.some((r) => refreshed.has(r.authorization ?? '') && r.status === 200)).toBe(true);
    expect(await clusterIds(page)).toEqual([OWN.alice.cluster]);
    expect(await alerts(page)).toEqual([]);
  });

  it('refreshes and sends the request again when the API answers 401', async () => {
    const page = pages.alice;
    const since = fleet.requests.length;
    fleet.refuseNext((claims) => claims.username === 'alice');
    await page.goto(`${fleet.url}/#/rules`);
    await page.locator('#rules tbody tr').first().waitFor();

    const refused = requestsWithTokensOf('alice', since).find((r) => r.status === 401);
    expect(refused).toBeDefined();
    // The refused request need not be the one the table waited for: its second sending may still be on its way.
    const retriedOf = () =>
      requestsWithTokensOf('alice', since).find(
        (r) => r.at >= (refused?.at ?? 0) && r.path === refused?.path && r.status === 200,
      );
    await expect.poll(retriedOf, { timeout: 5_000 }).toBeDefined();
    const retried = retriedOf();
    // Sent again at once (the view's next poll would be 3 s later), with a token refreshed after the 401.
    expect((retried?.at ?? Number.POSITIVE_INFINITY) - (refused?.at ?? 0)).toBeLessThan(2000);
    expect(retried?.authorization).not.toBe(refused?.authorization);
    const refresh = oidc
      .grants('refresh_token', 'alice')
      .find((r) => `Bearer ${r.accessToken}` === retried?.authorization);
    expect(refresh?.at).toBeGreaterThanOrEqual(refused?.at ?? Number.POSITIVE_INFINITY);
    expect(await alerts(page)).toEqual([]);
  });

  it('signs in again when the refresh token is refused, and comes back to the same address', async () => {
    const page = pages.alice;
    const route = `#/clusters/${OWN.alice.cluster}`;
    await page.goto(`${fleet.url}/${route}`);
    await page.locator('#nodes tbody tr').first().waitFor();
    const authorizeBefore = oidc.authorizeRequests.length;
    const codesBefore = oidc.grants('authorization_code', 'alice').length;
    oidc.revokeRefreshTokens('alice');
    oidc.nextUser = 'alice';

    // The next refresh (due within a token lifetime) is refused: the tab goes through the sign-in again.
    await expect
      .poll(() => oidc.authorizeRequests.length, { timeout: ACCESS_TOKEN_SECONDS * 1500 })
      .toBe(authorizeBefore + 1);
    const refusedRefresh = oidc.tokenRequests.filter((r) => r.form.grant_type === 'refresh_token').at(-1);
    expect(refusedRefresh?.status).toBe(400);
    await expect.poll(() => oidc.grants('authorization_code', 'alice').length).toBe(codesBefore + 1);
    await page.locator('#nodes tbody tr').first().waitFor();
    expect(page.url()).toBe(`${fleet.url}/${route}`);
    expect(await page.locator('#session-user').textContent()).toBe('alice');
  });

  it('signs out: the tokens are gone, the sign-in service ends its session, and the next visit signs in again', async () => {
    const page = pages.alice;
    await page.goto(`${fleet.url}/#/`);
    await page.locator('#clusters tbody tr').first().waitFor();
    const tokensBefore = await storedTokens(page);
    expect(tokensBefore).not.toBeNull();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'You have signed out' }).waitFor();
    expect(Object.fromEntries(oidc.logoutRequests.at(-1) ?? [])).toMatchObject({
      client_id: CLIENT_ID,
      logout_uri: `${fleet.url}/`,
    });
    expect(await storedTokens(page)).toBeNull();
    expect(await page.locator('#session').isHidden()).toBe(true);
    await page.screenshot({ path: join(SCREENSHOTS, 'signed-out.png') });

    // The next visit in this tab signs in afresh: a new trip to /authorize and a new code.
    const authorizeBefore = oidc.authorizeRequests.length;
    const codesBefore = oidc.grants('authorization_code', 'alice').length;
    oidc.nextUser = 'alice';
    await page.reload({ waitUntil: 'commit' });
    await page.locator('#session-user').waitFor();
    await page.locator('#clusters tbody tr').first().waitFor();
    expect(oidc.authorizeRequests.length).toBe(authorizeBefore + 1);
    expect(oidc.grants('authorization_code', 'alice').length).toBe(codesBefore + 1);
    expect(await storedTokens(page)).not.toBe(tokensBefore);
    expect(await clusterIds(page)).toEqual([OWN.alice.cluster]);
  });

  describe('local mode', () => {
    const TOKEN = 'local-token-0123456789abcdef';

    it("off loopback: takes the token from the server's link once, keeps it for the tab, and asks for the link without it", async () => {
      const local = await startFleetServer({
        auth: () => ({ kind: 'token' }),
        // Stands in for the local server's token check: the one token it was started with.
        authorizer: async (authorization) => (authorization === `Bearer ${TOKEN}` ? {} : null),
        caller: () => LOCAL_CALLER,
        clusters: CLUSTERS,
        teams: false,
      });
      try {
        const page = await browsers.bob.context.newPage();
        await page.goto(`${local.url}/#token=${TOKEN}`);
        await page.locator('#clusters tbody tr').first().waitFor();
        // The token left the address; the fleet (local mode sees everything) came with it.
        expect(page.url()).toBe(`${local.url}/#/`);
        expect(await clusterIds(page)).toEqual(['alpha', 'beta']);
        expect(local.requests.length).toBeGreaterThan(0);
        expect(local.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
        // A poll may still be on its way (no status yet); every answered request went through.
        expect(local.requests.filter((r) => r.status !== undefined).every((r) => r.status === 200)).toBe(true);
        expect(await page.locator('#session').isHidden()).toBe(true);
        await page.reload();
        await page.locator('#clusters tbody tr').first().waitFor();

        const asked = local.requests.length;
        const other = await browsers.bob.context.newPage();
        await other.goto(`${local.url}/#/`);
        await other.getByRole('heading', { name: 'Open the link the server printed' }).waitFor();
        expect(local.requests.length).toBe(asked);

        await other.goto(`${local.url}/#token=not-the-token`);
        await other.reload();
        await other.getByRole('heading', { name: 'The server refused the token' }).waitFor();
        await Promise.all([page.close(), other.close()]);
      } finally {
        await local.close();
      }
    });

    it('on loopback: no sign-in, no credentials sent, nothing shown about users', async () => {
      const local = await startFleetServer({
        auth: () => ({ kind: 'none' }),
        authorizer: async () => ({}),
        caller: () => LOCAL_CALLER,
        clusters: CLUSTERS,
        teams: false,
      });
      try {
        const page = await browsers.bob.context.newPage();
        await page.goto(`${local.url}/#/`);
        await page.locator('#clusters tbody tr').first().waitFor();
        expect(await clusterIds(page)).toEqual(['alpha', 'beta']);
        expect(local.requests.length).toBeGreaterThan(0);
        expect(local.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
        expect(await page.locator('#session').isHidden()).toBe(true);
        await page.close();
      } finally {
        await local.close();
      }
    });
  });
});
