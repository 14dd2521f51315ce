/** The page header's account corner: who is signed in, their teams, and "Sign out" (AWS mode only). */
import { ApiError, api } from './api.ts';
import { authKind, type Identity, identityFromIdToken, signOut } from './auth.ts';
import { h, setChildren } from './dom.ts';

/** Who is signed in: the API's answer (the source of truth), else what the ID token says. */
async function identity(): Promise<Identity | undefined> {
  try {
    return await api.me();
  } catch (error) {
    // An API without `GET /me` yet, or one that cannot be reached just now: the ID token names the user too.
    if (error instanceof ApiError && error.status !== 404 && error.status !== 0) throw error;
    return identityFromIdToken();
  }
}

/** Fills `slot` once the tab is signed in; local mode shows nothing (nobody signs in there). */
export async function showSession(slot: HTMLElement | null): Promise<void> {
  if (!slot || authKind() !== 'cognito') return;
  let who: Identity | undefined;
  try {
    who = await identity();
  } catch {
    // The view shows the API's answer; the header stays empty rather than guessing.
    return;
  }
  if (!who?.user) return;
  const teams = who.teams.length > 0 ? who.teams.join(', ') : 'none';
  setChildren(
    slot,
    h('span', { class: 'who' }, 'Signed in as ', h('strong', { id: 'session-user' }, who.user)),
    h('span', { class: 'teams' }, 'Teams: ', h('span', { id: 'session-teams' }, teams)),
    who.admin ? h('span', { class: 'badge', id: 'session-admin' }, 'admin: sees every team') : null,
    h('button', { type: 'button', id: 'sign-out', onclick: () => signOut() }, 'Sign out'),
  );
  slot.hidden = false;
}
