import type { Caller } from '#domain/access.ts';
import { isName } from '#domain/names.ts';

/** The Cognito group whose members see everything, unless configured otherwise (context value `adminGroup`). */
export const DEFAULT_ADMIN_GROUP = 'flink-profiler-admins';

/**
 * The groups of a `cognito:groups` claim. An HTTP API JWT authorizer hands every claim over as a string, so an
 * array arrives as `"[team-a team-b]"`; a direct invoke or another IdP may send a real array. Names that are no
 * valid team name are dropped: they can never match a cluster's team tag.
 */
export function groupsOf(claim: unknown): string[] {
  const raw = Array.isArray(claim)
    ? claim
    : typeof claim === 'string'
      ? claim.replace(/^\[|\]$/g, '').split(/[\s,]+/)
      : [];
  return [...new Set(raw.filter((group): group is string => isName('team', group)))];
}

/**
 * The caller described by a token's claims (Cognito access or ID token): the user name (`username` in access
 * tokens, `cognito:username` in ID tokens, else `email` or `sub`) and their teams; members of `adminGroup` see
 * everything. Null when the claims name nobody.
 */
export function callerFromJwtClaims(
  claims: Record<string, unknown> | undefined,
  options: { adminGroup: string },
): Caller | null {
  if (!claims) return null;
  const name = [claims.username, claims['cognito:username'], claims.email, claims.sub].find(
    (value): value is string => typeof value === 'string' && value.length > 0,
  );
  if (!name) return null;
  const groups = groupsOf(claims['cognito:groups']);
  return {
    user: name,
    teams: groups.filter((group) => group !== options.adminGroup),
    seesEverything: groups.includes(options.adminGroup),
  };
}
