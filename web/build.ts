/**
 * `npm run build:web`: bundles the UI (web/src) into static files in web/dist — index.html and content-hashed
 * assets under assets/ — that the local server serves at `/` and the CDK stack uploads to S3. Everything the
 * page needs is in those files: no fonts or scripts from elsewhere.
 */
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const webDir = dirname(fileURLToPath(import.meta.url));

/** Where the built UI goes by default. */
export const WEB_DIST_DIR = join(webDir, 'dist');

export interface WebBuild {
  outDir: string;
  /** Paths of the written files, relative to outDir. */
  files: string[];
}

/**
 * Builds the UI into `outDir`, replacing what was there. Takes well under a second. The files are written
 * next to it and swapped in, so a server starting meanwhile (or another build) never sees half a UI.
 */
export async function buildWeb(outDir: string = WEB_DIST_DIR): Promise<WebBuild> {
  await mkdir(dirname(outDir), { recursive: true });
  const staging = await mkdtemp(`${outDir}.building-`);
  try {
    const files = await buildInto(staging);
    const old = `${staging}.old`;
    await rename(outDir, old).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await rename(staging, outDir);
    await rm(old, { recursive: true, force: true });
    return { outDir, files };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function buildInto(outDir: string): Promise<string[]> {
  const assetsDir = join(outDir, 'assets');
  await mkdir(assetsDir, { recursive: true });
  const result = await build({
    absWorkingDir: join(webDir, '..'),
    entryPoints: { app: join(webDir, 'src', 'main.ts'), style: join(webDir, 'src', 'styles.css') },
    outdir: assetsDir,
    entryNames: '[name]-[hash]',
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome111', 'firefox111', 'safari16.4'],
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => join(join(webDir, '..'), file));
  const asset = (name: string, extension: string) => {
    const file = outputs.find((path) => basename(path).startsWith(`${name}-`) && path.endsWith(extension));
    if (!file) throw new Error(`the web build wrote no ${name}*${extension}`);
    return relative(outDir, file);
  };
  const template = await readFile(join(webDir, 'src', 'index.html'), 'utf8');
  const html = template.replace('%STYLE%', asset('style', '.css')).replace('%SCRIPT%', asset('app', '.js'));
  await writeFile(join(outDir, 'index.html'), html);
  return ['index.html', ...outputs.map((file) => relative(outDir, file))];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = performance.now();
  const { outDir, files } = await buildWeb();
  console.log(
    `web UI built into ${relative(process.cwd(), outDir) || '.'} in ${Math.round(performance.now() - started)} ms: ${files.join(', ')}`,
  );
}
