/**
 * The API's credentials in AWS mode: a Cognito access token sent as `Authorization: Bearer …` (local mode asks
 * for none). The token is kept for this tab only (sessionStorage); a sign-in flow that gets one (e.g. Cognito's
 * hosted UI) hands it over with `setToken`.
 */
const KEY = 'flink-fleet-profiler:token';

export function authorizationHeader(): Record<string, string> {
  const token = sessionStorage.getItem(KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

export function hasToken(): boolean {
  return sessionStorage.getItem(KEY) !== null;
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

type Listener = (messages: string[]) => void;
const listeners = new Set<Listener>();

/** Called with the API's message whenever it answers 401. */
export function onUnauthorized(listener: Listener): void {
  listeners.add(listener);
}

export function reportUnauthorized(messages: string[]): void {
  for (const listener of listeners) listener(messages);
}
