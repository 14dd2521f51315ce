import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { createApp } from '../../infra/app.ts';

/**
 * The CDK app as the infra tests build it: offline, with a one-page stand-in for the web build, into a directory
 * of its own under the system's temporary directory. A synthesized app with its bundles is a few hundred MB over
 * a test file, so each file removes what it made (`removeTestApps`, in its `afterAll`).
 */

// biome-ignore lint/suspicious/noExplicitAny: cdk-nag's report is read field by field
type Json = any;

const made: string[] = [];

/** A new app and stack for `context` (merged over the stand-in web build's path), not synthesized yet. */
export function createTestApp(context: Record<string, unknown> = {}) {
  const root = mkdtempSync(join(tmpdir(), 'ffp-cdk-'));
  made.push(root);
  const web = join(root, 'web');
  mkdirSync(web);
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>Flink Fleet Profiler</title>');
  const outdir = join(root, 'cdk.out');
  return { ...createApp(new App({ outdir, context: { webAssetPath: web, ...context } })), outdir };
}

/** cdk-nag's findings that nobody acknowledged, from the report a synthesis wrote to `outdir`. */
export function violationsOf(outdir: string): Json[] {
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8'));
  return report.pluginReports.flatMap((plugin: Json) => plugin.violations);
}

/** Removes every app directory this test file made. */
export function removeTestApps(): void {
  for (const root of made.splice(0)) rmSync(root, { recursive: true, force: true });
}
