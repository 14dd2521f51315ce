import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  type MutableRedirectUri,
  type MutableResponse,
  type MutableToken,
  OAuth2Server,
  type TokenRequestIncomingMessage,
} from 'oauth2-mock-server';

/**
 * A real OAuth 2.0 / OpenID Connect server on loopback (oauth2-mock-server: signed JWTs, a JWKS, the code flow
 * with PKCE) made to behave like Cognito's hosted sign-in for one public app client:
 *
 * - it has no login form, so `nextUser` names who the next `/authorize` signs in; the code, and later the refresh
 *   token, carry that user on;
 * - tokens carry Cognito's claims: access tokens `username`, `cognito:groups`, `client_id`, `token_use: access`;
 *   ID tokens `cognito:username`, `cognito:groups`, `aud`, `token_use: id`; they live `accessTokenSeconds`;
 * - it is as strict as Cognito where the package is lenient: `/authorize` needs this client, the registered
 *   callback, a state and an S256 challenge; a code is spent once, by the same client and callback, and only with
 *   the verifier of its challenge; a refresh token must be one it issued and has not revoked; a refresh answers
 *   no new refresh token (Cognito keeps the first).
 *
 * Every request is recorded for the tests to check what the browser sent.
 */

export interface OidcProviderOptions {
  clientId: string;
  /** The registered callback (and sign-out) URL: the UI's own. Settable after start, once the UI's port is known. */
  redirectUri?: string;
  /** The Cognito groups of each user who may sign in. */
  users: Record<string, string[]>;
  accessTokenSeconds: number;
}

export interface TokenRequestRecord {
  /** The form the browser posted. */
  form: Record<string, string>;
  /** Who the grant was for (undefined: a code or refresh token this server never issued). */
  user?: string;
  status: number;
  /** When it arrived (epoch ms). */
  at: number;
  /** The access token answered, when the grant was accepted. */
  accessToken?: string;
}

interface IssuedCode {
  user: string;
  clientId: string;
  redirectUri: string;
  challenge: string;
}

function queryOf(req: IncomingMessage): URLSearchParams {
  return new URL(req.url ?? '/', 'http://oidc.invalid').searchParams;
}

function s256(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

export class OidcProvider {
  /** Who the next sign-in is for. */
  nextUser: string;
  redirectUri: string;
  readonly authorizeRequests: URLSearchParams[] = [];
  readonly tokenRequests: TokenRequestRecord[] = [];
  readonly logoutRequests: URLSearchParams[] = [];
  private readonly codes = new Map<string, IssuedCode>();
  private readonly refreshTokens = new Map<string, { user: string; revoked: boolean }>();

  private constructor(
    private readonly server: OAuth2Server,
    private readonly options: OidcProviderOptions,
    /** `http://127.0.0.1:<port>`: the issuer, and the origin of every endpoint. */
    readonly origin: string,
  ) {
    this.nextUser = Object.keys(options.users)[0] ?? '';
    this.redirectUri = options.redirectUri ?? '';
    const service = server.service;
    service.on('beforeAuthorizeRedirect', (redirect: MutableRedirectUri, req: IncomingMessage) =>
      this.onAuthorize(redirect, req),
    );
    service.on('beforeTokenSigning', (token: MutableToken, req: TokenRequestIncomingMessage) =>
      this.onTokenSigning(token, req),
    );
    service.on('beforeResponse', (response: MutableResponse, req: TokenRequestIncomingMessage) =>
      this.onTokenResponse(response, req),
    );
    service.on('beforePostLogoutRedirect', (_redirect: MutableRedirectUri, req: IncomingMessage) => {
      this.logoutRequests.push(queryOf(req));
    });
  }

  /** Starts the server on a free loopback port with a fresh RS256 signing key. */
  static async start(options: OidcProviderOptions): Promise<OidcProvider> {
    const server = new OAuth2Server();
    await server.issuer.keys.generate('RS256');
    await server.start(0, '127.0.0.1');
    const origin = `http://127.0.0.1:${server.address().port}`;
    // The package names its issuer `localhost`; the browser and the API reach it as 127.0.0.1.
    server.issuer.url = origin;
    return new OidcProvider(server, options, origin);
  }

  get issuer(): string {
    return this.origin;
  }

  get endpoints() {
    return {
      authorize: `${this.origin}/authorize`,
      token: `${this.origin}/token`,
      endSession: `${this.origin}/endsession`,
      jwks: `${this.origin}/jwks`,
    };
  }

  /** The accepted grants of one type (and user), in order. */
  grants(grantType: string, user?: string): TokenRequestRecord[] {
    return this.tokenRequests.filter(
      (r) => r.form.grant_type === grantType && r.status === 200 && (user === undefined || r.user === user),
    );
  }

  /** Revokes every refresh token issued to `user` (as an admin's global sign-out does): refreshing then fails. */
  revokeRefreshTokens(user: string): void {
    for (const entry of this.refreshTokens.values()) if (entry.user === user) entry.revoked = true;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  private onAuthorize(redirect: MutableRedirectUri, req: IncomingMessage): void {
    const query = queryOf(req);
    this.authorizeRequests.push(query);
    const code = redirect.url.searchParams.get('code');
    const problem =
      query.get('client_id') !== this.options.clientId
        ? 'unknown client_id'
        : query.get('redirect_uri') !== this.redirectUri
          ? 'redirect_uri is not the registered callback'
          : query.get('response_type') !== 'code'
            ? 'only response_type=code is allowed'
            : !query.get('state')
              ? 'state is required'
              : query.get('code_challenge_method') !== 'S256' || !query.get('code_challenge')
                ? 'PKCE with code_challenge_method=S256 is required'
                : !(this.nextUser in this.options.users)
                  ? `no such user: ${this.nextUser}`
                  : undefined;
    if (problem || !code) {
      redirect.url.searchParams.delete('code');
      redirect.url.searchParams.set('error', 'invalid_request');
      redirect.url.searchParams.set('error_description', problem ?? 'no code');
      return;
    }
    this.codes.set(code, {
      user: this.nextUser,
      clientId: this.options.clientId,
      redirectUri: this.redirectUri,
      challenge: query.get('code_challenge') as string,
    });
  }

  /** Who a token request is for: the code's user, or the refresh token's; undefined when neither is known. */
  private userOf(form: Record<string, string>): string | undefined {
    if (form.grant_type === 'authorization_code') return this.codes.get(form.code ?? '')?.user;
    if (form.grant_type === 'refresh_token') return this.refreshTokens.get(form.refresh_token ?? '')?.user;
    return undefined;
  }

  private onTokenSigning(token: MutableToken, req: TokenRequestIncomingMessage): void {
    const form = req.body as unknown as Record<string, string>;
    const user = this.userOf(form) ?? 'nobody';
    const groups = this.options.users[user] ?? [];
    const { payload } = token;
    payload.sub = `sub-${user}`;
    payload.exp = payload.iat + this.options.accessTokenSeconds;
    if ('aud' in payload) {
      Object.assign(payload, { token_use: 'id', 'cognito:username': user, 'cognito:groups': groups });
    } else {
      Object.assign(payload, {
        token_use: 'access',
        username: user,
        'cognito:groups': groups,
        client_id: this.options.clientId,
      });
    }
  }

  private onTokenResponse(response: MutableResponse, req: TokenRequestIncomingMessage): void {
    const form = { ...(req.body as unknown as Record<string, string>) };
    const user = this.userOf(form);
    const problem = this.grantProblem(form);
    if (problem || !user || typeof response.body !== 'object') {
      response.statusCode = 400;
      response.body = { error: 'invalid_grant', error_description: problem ?? 'unknown grant' };
      this.tokenRequests.push({ form, user, status: 400, at: Date.now() });
      return;
    }
    const body = response.body;
    body.expires_in = this.options.accessTokenSeconds;
    if (form.grant_type === 'authorization_code') {
      this.codes.delete(form.code as string);
      this.refreshTokens.set(String(body.refresh_token), { user, revoked: false });
    } else {
      delete body.refresh_token;
    }
    this.tokenRequests.push({ form, user, status: 200, at: Date.now(), accessToken: String(body.access_token) });
  }

  private grantProblem(form: Record<string, string>): string | undefined {
    if (form.client_id !== this.options.clientId) return 'unknown client_id';
    if (form.grant_type === 'authorization_code') {
      const issued = this.codes.get(form.code ?? '');
      if (!issued) return 'unknown or spent code';
      if (form.redirect_uri !== issued.redirectUri) return 'redirect_uri differs from the authorize request';
      // The package checks the verifier only when one is sent: a missing one must fail too.
      if (!form.code_verifier || s256(form.code_verifier) !== issued.challenge) return 'code_verifier does not match';
      return undefined;
    }
    if (form.grant_type === 'refresh_token') {
      const entry = this.refreshTokens.get(form.refresh_token ?? '');
      if (!entry || entry.revoked) return 'refresh token unknown or revoked';
      return undefined;
    }
    return `grant_type ${form.grant_type} is not allowed for this client`;
  }
}
