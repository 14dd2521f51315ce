/**
 * Who the UI signs in as, driven by `auth.json` beside the page (WebAuthConfig), read once on start:
 *
 * - `none` (local mode on loopback): nobody signs in, requests carry no credentials;
 * - `token` (local mode on another address): the token comes once from the `#token=…` link the server prints,
 *   is kept for this tab and sent as `Authorization: Bearer`;
 * - `cognito` (AWS): the hosted sign-in with the authorization code flow and PKCE (no client secret). The tokens
 *   are kept for this tab (sessionStorage), the access token is sent as `Authorization: Bearer` and refreshed
 *   shortly before it expires and after a 401; when refreshing fails the tab signs in again.
 */
import { WEB_AUTH_CONFIG_FILE, type WebAuthConfig } from '#shared/web-auth-config.ts';
import { authorizeAddress, codeChallenge, GrantRefusedError, jwtClaims, randomUrlSafe, requestTokens } from './oidc.ts';

type CognitoConfig = Extract<WebAuthConfig, { kind: 'cognito' }>;

/** Who is signed in, as `GET api/v1/me` answers. */
export interface Identity {
  user: string | null;
  teams: string[];
  admin: boolean;
}

/** What the page shows instead of a view while the API cannot be used: why, and what to do about it. */
export interface Notice {
  title: string;
  text: string;
  action?: { label: string; run(): void };
}

interface Tokens {
  accessToken: string;
  idToken?: string;
  refreshToken?: string;
  /** When the access token expires (epoch ms, by this browser's clock). */
  expiresAt: number;
  /** When to refresh it: shortly before it expires. */
  refreshAt: number;
}

/** A sign-in under way: checked and spent when the sign-in service sends the browser back. */
interface PendingSignIn {
  state: string;
  verifier: string;
  /** The address (hash) the user asked for, to go back to once signed in. */
  route: string;
}

const KEYS = {
  tokens: 'flink-fleet-profiler:tokens',
  pending: 'flink-fleet-profiler:sign-in',
  signedOut: 'flink-fleet-profiler:signed-out',
  localToken: 'flink-fleet-profiler:token',
  /** Set while a sign-in started for an answer this tab did not ask for is under way: it is tried once. */
  restarted: 'flink-fleet-profiler:sign-in-restarted',
};

/** How long before expiry the access token is refreshed: a minute, or a quarter of its life when it is short. */
const REFRESH_MARGIN_MS = 60_000;

let config: WebAuthConfig = { kind: 'none' };
let refreshTimer: number | undefined;
let refreshing: Promise<Tokens> | undefined;
/** Set once the API refused this tab's sign-in after a refresh: no more signing in by itself (no redirect loops). */
let refused = false;

const noticeListeners = new Set<(notice: Notice) => void>();

/** Called when the API can no longer be used as things stand (a token refused, say), with what to show. */
export function onNotice(listener: (notice: Notice) => void): void {
  noticeListeners.add(listener);
}

function notify(notice: Notice): void {
  for (const listener of noticeListeners) listener(notice);
}

/** How this page signs in, once `startAuth` has read it. */
export function authKind(): WebAuthConfig['kind'] {
  return config.kind;
}

/**
 * Reads `auth.json` and gets the tab ready to call the API: takes a local token from the address, finishes a
 * sign-in the sign-in service sent the browser back from, or starts one (then the page leaves and this never
 * settles). Resolves with nothing when the API may be called, or with a notice to show instead of a view.
 */
export async function startAuth(): Promise<Notice | undefined> {
  config = await loadConfig();
  switch (config.kind) {
    case 'none':
      return undefined;
    case 'token':
      return startWithLocalToken();
    case 'cognito':
      return startWithCognito(config);
  }
}

async function loadConfig(): Promise<WebAuthConfig> {
  let response: Response;
  try {
    response = await fetch(WEB_AUTH_CONFIG_FILE, { cache: 'no-store', credentials: 'same-origin' });
  } catch {
    throw new Error('The profiler service cannot be reached; check that it is running, then reload the page.');
  }
  // A server from before sign-in existed serves no auth.json: it asks for no credentials either.
  if (response.status === 404) return { kind: 'none' };
  if (!response.ok) throw new Error(`The sign-in settings (${WEB_AUTH_CONFIG_FILE}) answered HTTP ${response.status}.`);
  const data: unknown = await response.json().catch(() => undefined);
  const problem = configProblem(data);
  if (problem) throw new Error(`The sign-in settings (${WEB_AUTH_CONFIG_FILE}) are not usable: ${problem}.`);
  return data as WebAuthConfig;
}

/** What is wrong with a would-be WebAuthConfig, or undefined when nothing is. */
function configProblem(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return 'not a JSON object';
  const value = data as Record<string, unknown>;
  if (value.kind === 'none' || value.kind === 'token') return undefined;
  if (value.kind !== 'cognito') return `kind must be none, token or cognito, not ${JSON.stringify(value.kind)}`;
  for (const field of ['clientId', 'authorizeUrl', 'tokenUrl', 'logoutUrl', 'redirectUri'] as const) {
    if (typeof value[field] !== 'string' || value[field] === '') return `${field} must be a non-empty string`;
  }
  for (const field of ['authorizeUrl', 'tokenUrl', 'logoutUrl', 'redirectUri'] as const) {
    if (!isAbsoluteUrl(value[field] as string)) return `${field} must be an absolute URL`;
  }
  if (!Array.isArray(value.scopes) || !value.scopes.every((s) => typeof s === 'string')) {
    return 'scopes must be a list of strings';
  }
  return undefined;
}

function isAbsoluteUrl(text: string): boolean {
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
}

function cognito(): CognitoConfig {
  if (config.kind !== 'cognito') throw new Error('this page does not sign in with Cognito');
  return config;
}

function readJson<T>(key: string): T | undefined {
  try {
    const text = sessionStorage.getItem(key);
    return text === null ? undefined : (JSON.parse(text) as T);
  } catch {
    return undefined;
  }
}

// Local mode off loopback

const LOCAL_TOKEN_NOTICE =
  'This profiler server asks for its access token. Open the link the server printed when it started (it ends in #token=…); this tab keeps the token until it is closed.';

function startWithLocalToken(): Notice | undefined {
  const match = /^#token=(.+)$/.exec(location.hash);
  if (match?.[1]) {
    let token = match[1];
    try {
      token = decodeURIComponent(token);
    } catch {
      // Not percent-encoded: the server printed the token as it is.
    }
    sessionStorage.setItem(KEYS.localToken, token);
    // The token leaves the address (history, bookmarks, screen shares); the page opens on the fleet.
    history.replaceState(history.state, '', `${location.pathname}${location.search}#/`);
  }
  if (sessionStorage.getItem(KEYS.localToken) === null) {
    return { title: 'Open the link the server printed', text: LOCAL_TOKEN_NOTICE };
  }
  return undefined;
}

// AWS: Cognito's hosted sign-in

async function startWithCognito(c: CognitoConfig): Promise<Notice | undefined> {
  const params = new URLSearchParams(location.search);
  if (params.has('code') || params.has('error')) return finishSignIn(c, params);
  const tokens = readJson<Tokens>(KEYS.tokens);
  if (tokens) {
    // Expired or not: the first request refreshes it, or signs in again when that fails.
    scheduleRefresh(tokens);
    return undefined;
  }
  if (sessionStorage.getItem(KEYS.signedOut) !== null) {
    sessionStorage.removeItem(KEYS.signedOut);
    return {
      title: 'You have signed out',
      text: 'Your session in this tab has ended.',
      action: { label: 'Sign in', run: () => void signIn('#/') },
    };
  }
  return signIn(location.hash);
}

/**
 * Sends the browser to the sign-in service, to come back to `route`. The state and the PKCE verifier stay in this
 * tab; only the verifier's SHA-256 travels. Never settles: the page leaves.
 */
async function signIn(route: string): Promise<never> {
  const c = cognito();
  const pending: PendingSignIn = { state: randomUrlSafe(16), verifier: randomUrlSafe(32), route };
  sessionStorage.setItem(KEYS.pending, JSON.stringify(pending));
  sessionStorage.removeItem(KEYS.signedOut);
  const challenge = await codeChallenge(pending.verifier);
  location.assign(
    authorizeAddress(c.authorizeUrl, {
      clientId: c.clientId,
      redirectUri: c.redirectUri,
      scopes: c.scopes,
      state: pending.state,
      codeChallenge: challenge,
    }),
  );
  return new Promise<never>(() => {});
}

/** The sign-in service sent the browser back with `?code=&state=` (or `?error=`): trade the code for tokens. */
async function finishSignIn(c: CognitoConfig, params: URLSearchParams): Promise<Notice | undefined> {
  const pending = readJson<PendingSignIn>(KEYS.pending);
  sessionStorage.removeItem(KEYS.pending);
  const route = pending?.route.startsWith('#') ? pending.route : '';
  // The code is single-use and has no business in history or bookmarks: back to the address first asked for.
  history.replaceState(null, '', `${location.pathname}${route}`);
  const again = (text: string): Notice => ({
    title: 'Sign-in did not complete',
    text,
    action: { label: 'Sign in again', run: () => void signIn(route) },
  });
  const error = params.get('error');
  if (error) return again(`The sign-in service answered: ${params.get('error_description') || error}.`);
  const code = params.get('code');
  const restarted = sessionStorage.getItem(KEYS.restarted) !== null;
  sessionStorage.removeItem(KEYS.restarted);
  if (!pending && code && !restarted && !readJson<Tokens>(KEYS.tokens)) {
    // Someone opened the sign-in page directly (the stack's SignInUrl): its code is not ours to trust, but the
    // sign-in service now has a session, so a sign-in of this tab's own goes through without a prompt. Once.
    sessionStorage.setItem(KEYS.restarted, '1');
    return signIn(route);
  }
  if (!pending || !code || params.get('state') !== pending.state) {
    // An old answer, reloaded or replayed: a session this tab already has stands; otherwise nothing is trusted.
    if (readJson<Tokens>(KEYS.tokens)) return undefined;
    return again(
      'The answer from the sign-in service does not belong to a sign-in started in this tab, so it was ignored.',
    );
  }
  try {
    keepTokens(
      await requestTokens(c.tokenUrl, {
        grant_type: 'authorization_code',
        client_id: c.clientId,
        code,
        redirect_uri: c.redirectUri,
        code_verifier: pending.verifier,
      }),
    );
  } catch (failure) {
    return again(failure instanceof Error ? failure.message : String(failure));
  }
  return undefined;
}

function keepTokens(
  answer: { access_token: string; id_token?: string; refresh_token?: string; expires_in: number },
  previous?: Tokens,
): Tokens {
  const now = Date.now();
  const lifetime = Math.max(0, answer.expires_in * 1000);
  const tokens: Tokens = {
    accessToken: answer.access_token,
    // A refresh answers a new access and ID token; Cognito keeps the refresh token as it was.
    idToken: answer.id_token ?? previous?.idToken,
    refreshToken: answer.refresh_token ?? previous?.refreshToken,
    expiresAt: now + lifetime,
    refreshAt: now + lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 4),
  };
  sessionStorage.setItem(KEYS.tokens, JSON.stringify(tokens));
  scheduleRefresh(tokens);
  return tokens;
}

function scheduleRefresh(tokens: Tokens): void {
  window.clearTimeout(refreshTimer);
  refreshTimer = window.setTimeout(
    () => void refresh().catch(() => undefined),
    Math.max(0, tokens.refreshAt - Date.now()),
  );
}

/** Refreshes the tokens, one refresh at a time; when the refresh token is refused, signs in again. */
function refresh(): Promise<Tokens> {
  refreshing ??= (async () => {
    const c = cognito();
    const tokens = readJson<Tokens>(KEYS.tokens);
    if (!tokens?.refreshToken) return signIn(location.hash);
    try {
      return keepTokens(
        await requestTokens(c.tokenUrl, {
          grant_type: 'refresh_token',
          client_id: c.clientId,
          refresh_token: tokens.refreshToken,
        }),
        tokens,
      );
    } catch (failure) {
      if (!(failure instanceof GrantRefusedError)) throw failure;
      sessionStorage.removeItem(KEYS.tokens);
      return signIn(location.hash);
    }
  })().finally(() => {
    refreshing = undefined;
  });
  return refreshing;
}

/** The access token to send now, refreshed first when it is due (or kept, while still valid, if that fails). */
async function accessToken(): Promise<string | undefined> {
  const tokens = readJson<Tokens>(KEYS.tokens);
  if (!tokens) return undefined;
  if (Date.now() < tokens.refreshAt) return tokens.accessToken;
  try {
    return (await refresh()).accessToken;
  } catch (failure) {
    if (Date.now() < tokens.expiresAt) return tokens.accessToken;
    throw failure;
  }
}

/** The headers that carry this tab's credentials to the API (none in local mode on loopback). */
export async function authorizationHeader(): Promise<Record<string, string>> {
  let token: string | undefined;
  if (config.kind === 'token') token = sessionStorage.getItem(KEYS.localToken) ?? undefined;
  else if (config.kind === 'cognito') token = await accessToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/**
 * After the API answered 401: true when the request is worth sending once more, with tokens refreshed just now.
 * Without tokens the tab signs in (and this never settles: the page leaves).
 */
export async function retryAfterUnauthorized(): Promise<boolean> {
  if (config.kind !== 'cognito' || refused) return false;
  if (!readJson<Tokens>(KEYS.tokens)) return signIn(location.hash);
  try {
    await refresh();
    return true;
  } catch {
    return false;
  }
}

/** The API refused this tab's credentials even after a retry: say so, and offer a way on. */
export function reportUnauthorized(messages: string[]): void {
  const answered = messages.length > 0 ? ` It answered: ${messages.join('; ')}.` : '';
  if (config.kind === 'token') {
    sessionStorage.removeItem(KEYS.localToken);
    notify({ title: 'The server refused the token', text: `${LOCAL_TOKEN_NOTICE}${answered}` });
  } else if (config.kind === 'cognito') {
    refused = true;
    sessionStorage.removeItem(KEYS.tokens);
    notify({
      title: 'The profiler API refused your sign-in',
      text: `Sign in again; if this keeps happening, your account may not be allowed to use this deployment.${answered}`,
      action: { label: 'Sign in again', run: () => void signIn(location.hash) },
    });
  }
}

/**
 * Who signed in, from the ID token's claims: what the header shows while the API has no `GET /me`. Admin rights
 * are the API's to tell (the admin group is its setting), so this says none.
 */
export function identityFromIdToken(): Identity | undefined {
  const claims = jwtClaims(readJson<Tokens>(KEYS.tokens)?.idToken);
  if (!claims) return undefined;
  const user = [claims['cognito:username'], claims.username, claims.email, claims.sub].find(
    (value): value is string => typeof value === 'string' && value !== '',
  );
  const groups = claims['cognito:groups'];
  return {
    user: user ?? null,
    teams: Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [],
    admin: false,
  };
}

/** Ends the session: forgets the tokens and has the sign-in service end its own, which sends the browser back. */
export function signOut(): void {
  const c = cognito();
  window.clearTimeout(refreshTimer);
  sessionStorage.removeItem(KEYS.tokens);
  sessionStorage.removeItem(KEYS.pending);
  sessionStorage.setItem(KEYS.signedOut, '1');
  const url = new URL(c.logoutUrl);
  url.searchParams.set('client_id', c.clientId);
  url.searchParams.set('logout_uri', c.redirectUri);
  // RP-initiated logout's name for the same address (OpenID Connect servers); Cognito reads logout_uri.
  url.searchParams.set('post_logout_redirect_uri', c.redirectUri);
  location.assign(url.href);
}
