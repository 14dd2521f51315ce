import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { repoRoot } from '#test/support/paths.ts';

/**
 * `npx cdk synth` as a user runs it from a clone (cdk.json: build the UI, then the app), offline: no AWS
 * credentials or metadata service, a Docker command that always fails, and every HTTP(S) request sent to
 * a closed loopback port.
 */
it('synthesizes the stack with the CDK CLI offline: no credentials, no Docker, no network', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'ffp-cdk-cli-'));
  onTestFinished(() => rmSync(outdir, { recursive: true, force: true }));
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_') && !name.startsWith('CDK_')),
  );
  const result = spawnSync(
    'npx',
    ['cdk', 'synth', '--quiet', '--no-notices', '--no-version-reporting', '--output', outdir],
    {
      cwd: repoRoot,
      env: {
        ...env,
        AWS_EC2_METADATA_DISABLED: 'true',
        CDK_DOCKER: '/bin/false',
        HTTP_PROXY: 'http://127.0.0.1:9',
        HTTPS_PROXY: 'http://127.0.0.1:9',
        NO_PROXY: '',
      },
      encoding: 'utf8',
      timeout: 240_000,
    },
  );
  expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
  const template = JSON.parse(readFileSync(join(outdir, 'FlinkFleetProfiler.template.json'), 'utf8'));
  expect(
    Object.values(template.Resources).filter((r: unknown) => (r as { Type: string }).Type === 'AWS::Lambda::Function')
      .length,
  ).toBeGreaterThanOrEqual(3);
  // The built UI went into the stack's assets.
  const assets = JSON.parse(readFileSync(join(outdir, 'FlinkFleetProfiler.assets.json'), 'utf8'));
  const staged = Object.values(assets.files as Record<string, { source: { path: string } }>).map((f) =>
    join(outdir, f.source.path),
  );
  expect(staged.some((path) => existsSync(join(path, 'index.html')))).toBe(true);
}, 300_000);
