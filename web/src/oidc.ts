/**
 * The OAuth 2.0 pieces of the sign-in (authorization code flow with PKCE, RFC 7636, for a public client: no
 * secret): the authorize address, the two token requests and reading a token's claims. auth.ts keeps the session.
 */

/** What a token endpoint answers (RFC 6749 §5.1); Cognito leaves `refresh_token` out of a refresh's answer. */
export interface TokenResponse {
  access_token: string;
  id_token?: string;
  refresh_token?: string;
  /** Seconds the access token lives. */
  expires_in: number;
  token_type: string;
}

/** The sign-in service could not be reached or answered something unusable; the message is for the user. */
export class SignInServiceError extends Error {
  override name = 'SignInServiceError';
}

/** The token endpoint said no (RFC 6749 §5.2: 4xx with `error`): the grant is spent, expired or revoked. */
export class GrantRefusedError extends SignInServiceError {
  constructor(
    readonly status: number,
    readonly error: string,
  ) {
    super(`The sign-in service refused the sign-in (${error}).`);
    this.name = 'GrantRefusedError';
  }
}

/** `bytes` random bytes, base64url without padding: 32 bytes make a 43-character PKCE verifier (RFC 7636 §4.1). */
export function randomUrlSafe(bytes: number): string {
  return base64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** The S256 code challenge of a verifier: base64url(SHA-256(verifier)). Needs a secure context (https or loopback). */
export async function codeChallenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64Url(new Uint8Array(digest));
}

function base64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The address that starts a sign-in: `authorizeUrl` with the code flow's parameters added to its own. */
export function authorizeAddress(
  authorizeUrl: string,
  params: { clientId: string; redirectUri: string; scopes: string[]; state: string; codeChallenge: string },
): string {
  const url = new URL(authorizeUrl);
  const query = {
    response_type: 'code',
    client_id: params.clientId,
    redirect_uri: params.redirectUri,
    scope: params.scopes.join(' '),
    state: params.state,
    code_challenge: params.codeChallenge,
    code_challenge_method: 'S256',
  };
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  return url.href;
}

/**
 * POSTs a grant to the token endpoint as a form (the only body it takes). Throws GrantRefusedError when the
 * endpoint refuses the grant, and SignInServiceError when it cannot be reached or answers something else.
 */
export async function requestTokens(tokenUrl: string, grant: Record<string, string>): Promise<TokenResponse> {
  let response: Response;
  try {
    response = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(grant).toString(),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new SignInServiceError('The sign-in service cannot be reached; check the connection, then reload the page.');
  }
  const data: unknown = await response.json().catch(() => undefined);
  const record = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  if (response.status >= 400 && response.status < 500) {
    throw new GrantRefusedError(response.status, typeof record.error === 'string' ? record.error : 'invalid_grant');
  }
  if (!response.ok || typeof record.access_token !== 'string' || typeof record.expires_in !== 'number') {
    throw new SignInServiceError(`The sign-in service answered HTTP ${response.status} without tokens.`);
  }
  return record as unknown as TokenResponse;
}

/**
 * The claims of a JWT, read without checking its signature: only for showing who signed in, from a token the
 * token endpoint just handed over. The API checks every token it is sent.
 */
export function jwtClaims(token: string | undefined): Record<string, unknown> | undefined {
  const payload = token?.split('.')[1];
  if (!payload) return undefined;
  try {
    const binary = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const json = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
    const claims: unknown = JSON.parse(json);
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
