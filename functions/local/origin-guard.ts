import { networkInterfaces } from 'node:os';
import type { Context, MiddlewareHandler } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { ENV, isLoopbackHost } from '#shared/config.ts';
import type { WebAuthConfig } from '#shared/web-auth-config.ts';

/**
 * Local mode answers only its own origin. A browser on this machine runs pages of any site, and any site can
 * point a name of its own at 127.0.0.1 (DNS rebinding) or post a form to it (CSRF); these middlewares refuse
 * what such pages send:
 *
 * - `hostGuard`: every request whose `Host` is not one of the server's own addresses gets 421;
 * - `originGuard`: a state-changing request from another origin (`Origin`, or `Sec-Fetch-Site: cross-site`)
 *   gets 403;
 * - `tokenGuard`: with `FLINK_PROFILER_TOKEN` set, an API request without that bearer token gets 401.
 *
 * Every refusal has the API's error shape, `{"errors": ["<Header>: <the rule>"]}`.
 */

/** Where the server listens and where it says it is. */
export interface ListenAddress {
  /** `FLINK_PROFILER_HOST`: the address bound (`127.0.0.1`, `::1`, `localhost`, `0.0.0.0`, a name, …). */
  host: string;
  /** The port bound (known once listening). */
  port: number;
  /** `FLINK_PROFILER_PUBLIC_URL`: the server as its users reach it (e.g. through a proxy), if set. */
  publicUrl?: string;
}

/** The `Host` values (canonical, lower case, `:80` left out) and the origins the server answers as its own. */
export interface OwnOrigin {
  hosts: ReadonlySet<string>;
  origins: ReadonlySet<string>;
}

/** The names of this machine's loopback interface: the server bound to any of them can be reached by all. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/** Addresses that bind every interface. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

/** `host[:port]` as a URL's host: lower case, IPv6 in brackets, the port left out when it is the scheme's default. */
function canonicalHost(hostname: string, port: number, scheme: 'http' | 'https' = 'http'): string | undefined {
  const name = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
  try {
    return new URL(`${scheme}://${name}:${port}`).host;
  } catch {
    return undefined;
  }
}

/**
 * The server's own addresses: the address it listens on with its port; on loopback also `localhost`,
 * `127.0.0.1` and `[::1]`; on a wildcard address (`0.0.0.0`, `::`) also every interface's address (read on each
 * call, as they can change); and the host of the public URL. Their origins are `http://` + each of those, and
 * the public URL's own origin (its scheme may be https, behind a proxy).
 */
export function ownOrigin({ host, port, publicUrl }: ListenAddress): OwnOrigin {
  const names = new Set([host]);
  if (isLoopbackHost(host)) for (const name of LOOPBACK_NAMES) names.add(name);
  if (WILDCARD_HOSTS.has(host)) {
    for (const name of LOOPBACK_NAMES) names.add(name);
    for (const addresses of Object.values(networkInterfaces()))
      for (const address of addresses ?? []) if (!address.scopeid) names.add(address.address);
  }
  const hosts = new Set<string>();
  const origins = new Set<string>();
  for (const name of names) {
    const canonical = canonicalHost(name, port);
    if (canonical === undefined) continue;
    hosts.add(canonical);
    origins.add(`http://${canonical}`);
  }
  if (publicUrl) {
    const url = new URL(publicUrl);
    hosts.add(url.host);
    // A proxy in front may forward the default port explicitly (`Host: name:443`).
    if (!url.port) {
      const explicit = canonicalHost(url.hostname, url.protocol === 'https:' ? 443 : 80);
      if (explicit) hosts.add(explicit);
    }
    origins.add(url.origin);
  }
  return { hosts, origins };
}

/** A `Host` header's value as `ownOrigin` writes hosts; undefined when it is not a bare `host[:port]`. */
function requestHost(header: string | undefined): string | undefined {
  if (!header || /[/\\@?#\s]/.test(header)) return undefined;
  try {
    return new URL(`http://${header}`).host;
  } catch {
    return undefined;
  }
}

const refuse = (c: Context, status: 401 | 403 | 421, reason: string) => c.json({ errors: [reason] }, status);

/**
 * Refuses (421 Misdirected Request) every request, on every path, whose `Host` header is not one of the server's
 * own addresses: a page on another site that made its name resolve to this machine (DNS rebinding) names
 * that site in `Host`. `own` is asked on each request, so it may change once the server listens.
 */
export function hostGuard(own: () => OwnOrigin): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('host');
    const host = requestHost(header);
    if (host === undefined || !own().hosts.has(host))
      return refuse(
        c,
        421,
        header
          ? `Host: "${header}" is not one of this server's own addresses, and other names are refused (DNS rebinding); ` +
              `open it at the address it listens on, or set ${ENV.publicUrl} to the URL you use`
          : 'Host: is required',
      );
    await next();
  };
}

/** Methods that only read (Fetch's "safe" methods); every other method may change something. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Refuses (403) a state-changing request (anything but GET, HEAD and OPTIONS) that a page of another site sent:
 * one whose `Origin` header is present and is not one of the server's own origins (`null`, from sandboxed
 * frames such as the flame graphs, included), or that the browser marks `Sec-Fetch-Site: cross-site`. Requests
 * without either header (curl, scripts) pass.
 *
 * Hand-written rather than `hono/csrf`: that one checks only form and text/plain bodies, lets a request pass when
 * either header is acceptable, refuses form posts that carry neither, and answers plain text.
 */
export function originGuard(own: () => OwnOrigin): MiddlewareHandler {
  return async (c, next) => {
    if (!SAFE_METHODS.has(c.req.method)) {
      const origin = c.req.header('origin');
      if (origin !== undefined) {
        if (!own().origins.has(origin))
          return refuse(
            c,
            403,
            `Origin: "${origin}" is not this server's origin; requests that change anything are accepted only from its own pages`,
          );
      }
      if (c.req.header('sec-fetch-site') === 'cross-site')
        return refuse(c, 403, 'Sec-Fetch-Site: cross-site requests may not change anything here');
    }
    await next();
  };
}

/**
 * Refuses (401) a request without `Authorization: Bearer <token>`, compared in constant time (`hono/bearer-auth`,
 * which hashes both sides and compares the digests and the strings in full).
 */
export function tokenGuard(token: string): MiddlewareHandler {
  const refusal = (reason: string) => ({
    message: (c: Context) => refuse(c, 401, `Authorization: ${reason}`),
  });
  return bearerAuth({
    token,
    noAuthenticationHeader: refusal(`is required: send "Bearer <${ENV.token}>"`),
    invalidAuthenticationHeader: refusal(`must be "Bearer <${ENV.token}>"`),
    invalidToken: refusal(`the bearer token is not this server's ${ENV.token}`),
  });
}

/** What `GET /auth.json` tells the web UI: whether it must send the token it was given in the link's fragment. */
export function webAuthConfig(token: string | undefined): WebAuthConfig {
  return token ? { kind: 'token' } : { kind: 'none' };
}

/** The link to print at start: the UI, with the token in the fragment (never sent to a server) when there is one. */
export function uiLink(baseUrl: string, token: string | undefined): string {
  return `${baseUrl.replace(/\/$/, '')}/${token ? `#token=${token}` : ''}`;
}
