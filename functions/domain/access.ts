/**
 * Who asks, and what they may see. In AWS mode a caller is a signed-in user whose teams are their Cognito
 * groups; a cluster belongs to the teams named in its instances' team tag, and anything outside the caller's
 * teams is answered exactly like an unknown name (404). Local mode has one implicit user who sees everything.
 */
export interface Caller {
  /** The user's name from the token, `rule:<id>` for a rule firing, or null where nobody signs in (local mode). */
  user: string | null;
  /** The teams the caller acts for. */
  teams: readonly string[];
  /** Admins and local mode's one user see every cluster, run and rule. */
  seesEverything: boolean;
}

/** Local mode's one implicit user: no sign-in, no teams, sees everything. */
export const LOCAL_CALLER: Caller = Object.freeze({ user: null, teams: [], seesEverything: true });

/** Whether the caller may see something owned by `ownerTeams` (a cluster's teams, or the teams a run was made for). */
export function canSee(caller: Caller, ownerTeams: readonly string[]): boolean {
  return caller.seesEverything || ownerTeams.some((team) => caller.teams.includes(team));
}

/** The teams a list query must keep, or undefined when the caller sees everything. */
export function visibleTeams(caller: Caller): readonly string[] | undefined {
  return caller.seesEverything ? undefined : caller.teams;
}
