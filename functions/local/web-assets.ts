import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Context } from 'hono';

/** Where `npm run build:web` (web/build.ts) writes the UI. */
export const WEB_DIST_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/**
 * The UI's page may load only its own files and talk only to its own origin, plus `connectTo` (on AWS: the sign-in
 * service's token endpoint, which the UI calls to trade a code and to refresh); flame graphs open in their own tab
 * (links are navigations, which this does not restrict). CloudFront sends the same policy (infra/web.ts).
 */
export function pageCsp(connectTo: readonly string[] = []): string {
  return (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    `connect-src ${["'self'", ...connectTo].join(' ')}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`
  );
}

/** Local mode's page policy: its own origin only. */
export const PAGE_CSP = pageCsp();

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  gzipped?: Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
}

/** The built UI, read into memory once: a handful of small files, served by path. */
export class WebAssets {
  private constructor(private readonly files: ReadonlyMap<string, Asset>) {}

  /** Reads web/dist (or `dir`); undefined when the UI has not been built. */
  static async load(dir: string = WEB_DIST_DIR): Promise<WebAssets | undefined> {
    let names: string[];
    try {
      names = await filesUnder(dir);
    } catch {
      return undefined;
    }
    if (!names.includes('index.html')) return undefined;
    const files = new Map<string, Asset>();
    for (const name of names) {
      const body = new Uint8Array(await readFile(join(dir, name)));
      const type = CONTENT_TYPES[extname(name)] ?? 'application/octet-stream';
      const isPage = name.endsWith('.html');
      const headers: Record<string, string> = {
        'Content-Type': type,
        'X-Content-Type-Options': 'nosniff',
        // The page is small and names its assets by content hash: it is always revalidated, they never need to be.
        'Cache-Control': name.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        ...(isPage
          ? { 'Content-Security-Policy': PAGE_CSP, 'Referrer-Policy': 'same-origin', 'X-Frame-Options': 'DENY' }
          : {}),
      };
      const compressible = type.startsWith('text/') || type.startsWith('application/json') || type === 'image/svg+xml';
      files.set(`/${name}`, { body, headers, ...(compressible ? { gzipped: new Uint8Array(gzipSync(body)) } : {}) });
    }
    return new WebAssets(files);
  }

  /** Answers a GET for `path` (`/` is the page), gzip-compressed when the client takes it; undefined if no such file. */
  serve(c: Context, path: string): Response | undefined {
    const asset = this.files.get(path === '/' ? '/index.html' : path);
    if (!asset) return undefined;
    const gzip = asset.gzipped && /\bgzip\b/.test(c.req.header('accept-encoding') ?? '');
    return c.body(gzip ? (asset.gzipped as Uint8Array<ArrayBuffer>) : asset.body, 200, {
      ...asset.headers,
      Vary: 'Accept-Encoding',
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
    });
  }
}

/** Paths of the files under `dir`, relative and with `/` separators. */
async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) names.push(...(await filesUnder(dir, name)));
    else if (entry.isFile()) names.push(name);
  }
  return names;
}

/** What `/` answers when the UI has not been built: how to build it. */
export const UNBUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flink Fleet Profiler</title></head>
<body style="font: 15px/1.5 system-ui, sans-serif; margin: 2rem">
<h1>The web UI is not built</h1>
<p>Run <code>npm run build:web</code> and restart the server (<code>npm start</code> builds it for you).
The API works meanwhile: <a href="api/v1/openapi.json">api/v1/openapi.json</a>.</p>
</body></html>
`;
