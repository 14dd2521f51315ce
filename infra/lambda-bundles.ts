import { join, relative, sep } from 'node:path';
import { type BuildOptions, build, type Metafile, type Plugin } from 'esbuild';

/**
 * The Lambda functions and how they are bundled: one definition for the CDK stack (infra/lambda-code.ts runs
 * `buildLambdaBundle` through infra/build-lambda.ts) and for the tests and benchmarks that build the same bundles.
 */
export const LAMBDA_ENTRIES = {
  api: 'functions/lambda/api.lambda.ts',
  completion: 'functions/lambda/completion.lambda.ts',
  reconciler: 'functions/lambda/reconciler.lambda.ts',
  tick: 'functions/lambda/tick.lambda.ts',
} as const;

export type LambdaName = keyof typeof LAMBDA_ENTRIES;

/** The Lambda runtime's Node.js major version, which the bundles target. */
export const LAMBDA_NODE_MAJOR = 22;

/** ESM bundles of CommonJS dependencies need `require`; Node's ESM has none, so the bundle makes one. */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

/** The file each bundle is written to, in its own directory, and so the functions' handler. */
const LAMBDA_BUNDLE_FILE = 'index.mjs';
export const LAMBDA_HANDLER = 'index.handler';

const REPO_ROOT = join(import.meta.dirname, '..');
const ENGLISH_ONLY_LOCALES = join(import.meta.dirname, 'zod-english-locales.ts');

/** Whether `name` is one of the functions, for callers that get it as a string (a command line). */
export function isLambdaName(name: string): name is LambdaName {
  return Object.hasOwn(LAMBDA_ENTRIES, name);
}

/**
 * Zod's namespace object (used whole by @hono/zod-openapi's `extendZodWithOpenApi(z)`) carries `z.locales`, every
 * language zod has: 258 KB of each minified bundle. Its default, English, is all the functions ever show. This
 * plugin points zod's own locales index, when zod's own files import it, at a module that has English only.
 * A relative import inside a package cannot be redirected with esbuild's `alias`, hence a plugin.
 *
 * The build fails if a locale other than English is still in it, or if zod is in it and the plugin redirected
 * nothing: after a zod upgrade that moves its locales, this is the place to look again.
 */
function englishOnlyZodLocales(): Plugin {
  return {
    name: 'english-only-zod-locales',
    setup(esbuild) {
      // The end check reads which files went in.
      esbuild.initialOptions.metafile = true;
      const absWorkingDir = esbuild.initialOptions.absWorkingDir ?? process.cwd();
      // Zod's files and its locales index as this build resolves them: the same copy, conditions and fields.
      let zod = { root: '', localesIndex: '' };
      let redirected = 0;
      esbuild.onStart(async () => {
        const [manifest, index] = await Promise.all(
          ['zod/package.json', 'zod/v4/locales'].map((path) =>
            esbuild.resolve(path, { kind: 'import-statement', resolveDir: REPO_ROOT }),
          ),
        );
        const errors = [manifest, index].flatMap((result) => result?.errors ?? []);
        if (errors.length > 0 || !manifest || !index) return { errors };
        zod = { root: join(manifest.path, '..'), localesIndex: index.path };
        redirected = 0;
      });
      esbuild.onResolve({ filter: /locales[/\\]index\.js$/ }, (args) => {
        if (!args.importer.startsWith(zod.root + sep) || join(args.resolveDir, args.path) !== zod.localesIndex) return;
        redirected += 1;
        return { path: ENGLISH_ONLY_LOCALES };
      });
      esbuild.onEnd((result) => {
        if (result.errors.length > 0 || !result.metafile) return;
        const zodDir = `${relative(absWorkingDir, zod.root).split(sep).join('/')}/`;
        const zodInputs = Object.keys(result.metafile.inputs).filter((input) => input.startsWith(zodDir));
        const foreign = zodInputs.filter((input) => /\/locales\/(?!en\.js$|index\.js$)[^/]+$/.test(input));
        const errors = [
          ...(foreign.length > 0
            ? [`zod locales other than English are in the bundle (${foreign.join(', ')}): see infra/lambda-bundles.ts`]
            : []),
          ...(zodInputs.length > 0 && redirected === 0
            ? ["zod is in the bundle but its locales index was never imported: zod's layout changed, check the plugin"]
            : []),
        ];
        return { errors: errors.map((text) => ({ text, pluginName: 'english-only-zod-locales' })) };
      });
    },
  };
}

/** esbuild options for one function: ESM, minified, the AWS SDK bundled (not the runtime's copy), English-only zod. */
export function lambdaBuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    absWorkingDir: REPO_ROOT,
    bundle: true,
    platform: 'node',
    target: `node${LAMBDA_NODE_MAJOR}`,
    format: 'esm',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    plugins: [englishOnlyZodLocales()],
    logLevel: 'silent',
  };
}

/**
 * Builds one function into `outDir`/index.mjs, as the stack deploys it; returns the file's path and esbuild's
 * account of what went into it (the plugin asks for it: its check reads the inputs).
 */
export async function buildLambdaBundle(
  name: LambdaName,
  outDir: string,
): Promise<{ file: string; metafile: Metafile | undefined }> {
  const file = join(outDir, LAMBDA_BUNDLE_FILE);
  const { metafile } = await build(lambdaBuildOptions(join(REPO_ROOT, LAMBDA_ENTRIES[name]), file));
  return { file, metafile };
}
