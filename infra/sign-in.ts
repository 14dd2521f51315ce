import { Fn, Stack, Token } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import type { IConstruct } from 'constructs';
import type { WebAuthConfig } from '../functions/shared/web-auth-config.ts';

/** What the web UI asks for: who signed in (the ID token's claims) and their email; the groups come anyway. */
export const SIGN_IN_SCOPES = [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE];

/** Cognito's rule for a hosted domain's prefix (`<prefix>.auth.<region>.amazoncognito.com`). */
export const DOMAIN_PREFIX_RULE =
  'must be 1 to 63 lower-case letters, digits and hyphens, neither starting nor ending with a hyphen, ' +
  "and contain none of 'aws', 'amazon' or 'cognito'";

const RESERVED = /aws|amazon|cognito/;

/** Whether `prefix` is a domain prefix Cognito accepts. */
export function isDomainPrefix(prefix: string): boolean {
  return /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(prefix) && !RESERVED.test(prefix);
}

/** The readable part of the default prefix: the stack's name, lower-cased, without what Cognito reserves. */
export function readablePrefix(stackName: string): string {
  let name = stackName.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  // Removing one reserved word can join two halves into another ('amazawson'), hence the loop.
  for (let before = ''; before !== name; ) {
    before = name;
    name = name.replace(new RegExp(RESERVED.source, 'g'), '');
  }
  name = name
    .replace(/-+/g, '-')
    .slice(0, 50)
    .replace(/^-+|-+$/g, '');
  return name || 'flink-profiler';
}

/**
 * A hosted sign-in domain prefix of this stack: its name and the last group of its stack id's UUID
 * (`arn:…:stack/<name>/<uuid>`, 12 lower-case hex digits), so two deployments in one region, in one account or
 * in two, never ask for the same prefix. At most 50 + 1 + 12 characters.
 */
export function defaultDomainPrefix(scope: IConstruct): string {
  const stack = Stack.of(scope);
  const name = Token.isUnresolved(stack.stackName) ? 'flink-profiler' : readablePrefix(stack.stackName);
  const uuid = Fn.select(2, Fn.split('/', stack.stackId));
  return `${name}-${Fn.select(4, Fn.split('-', uuid))}`;
}

/**
 * How the web UI signs in (its `auth.json`): Cognito's hosted sign-in, authorization code with PKCE, returning
 * to the UI's own URL.
 */
export function cognitoSignIn(
  domain: cognito.UserPoolDomain,
  client: cognito.IUserPoolClient,
  uiUrl: string,
): WebAuthConfig & { kind: 'cognito' } {
  const base = domain.baseUrl();
  return {
    kind: 'cognito',
    clientId: client.userPoolClientId,
    authorizeUrl: `${base}/oauth2/authorize`,
    tokenUrl: `${base}/oauth2/token`,
    logoutUrl: `${base}/logout`,
    redirectUri: uiUrl,
    scopes: SIGN_IN_SCOPES.map((scope) => scope.scopeName),
  };
}

/**
 * The hosted sign-in page for the web client. The UI starts this same flow itself (with its own `state` and
 * PKCE challenge) on a first visit; this link is for checking that a user can sign in. `redirect_uri` needs no
 * escaping: `:` and `/` are allowed in a query (RFC 3986), and a CloudFront domain has nothing else.
 */
export function signInUrl(config: WebAuthConfig & { kind: 'cognito' }): string {
  const query = [
    `client_id=${config.clientId}`,
    'response_type=code',
    `scope=${config.scopes.join('+')}`,
    `redirect_uri=${config.redirectUri}`,
  ];
  return `${config.authorizeUrl}?${query.join('&')}`;
}
