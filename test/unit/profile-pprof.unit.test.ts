import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Profile as PprofProfile } from 'pprof-format';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCollapsed, toPprof } from '#domain/profile/index.ts';
import { repoRoot } from '#test/support/paths.ts';

const text = readFileSync(join(repoRoot, 'test/fixtures/profiles/cpu-hot-a.collapsed'), 'utf8');
const profile = parseCollapsed(text);
const options = {
  mode: 'CPU',
  durationSeconds: 5,
  timeNanos: 1_764_608_400_000_000_000,
  intervalNanos: 10_000_000,
} as const;

function decode(gzipped: Buffer) {
  const pprof = PprofProfile.decode(gunzipSync(gzipped));
  const str = (index: number | bigint) => pprof.stringTable.strings[Number(index)] as string;
  const functionName = new Map(pprof.function.map((f) => [Number(f.id), str(f.name)]));
  const locationName = new Map(
    pprof.location.map((l) => [Number(l.id), functionName.get(Number(l.line[0]?.functionId)) as string]),
  );
  return { pprof, str, locationName };
}

describe('toPprof', () => {
  it('encodes every stack as a sample, leaf first, with its count and thread', () => {
    const { pprof, str, locationName } = decode(toPprof(profile, options));

    expect(pprof.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`)).toEqual(['samples/count', 'cpu/nanoseconds']);
    expect(pprof.sample).toHaveLength(profile.stacks.length);
    const decoded = pprof.sample.map((sample) => ({
      thread: sample.label.filter((l) => str(l.key) === 'thread').map((l) => str(l.str))[0] ?? null,
      frames: sample.locationId.map((id) => locationName.get(Number(id))).reverse(),
      count: Number(sample.value[0]),
    }));
    expect(decoded).toEqual(profile.stacks);
    for (const sample of pprof.sample) expect(Number(sample.value[1])).toBe(Number(sample.value[0]) * 10_000_000);
    expect(Number(pprof.durationNanos)).toBe(5e9);
    expect(BigInt(pprof.timeNanos)).toBe(1_764_608_400_000_000_000n);
    expect(Number(pprof.period)).toBe(10_000_000);
    expect(str(pprof.defaultSampleType)).toBe('cpu');
  });

  it('has only samples/count without an interval or in a mode that does not sample time', () => {
    for (const mode of ['ALLOC', 'LOCK'] as const) {
      const { pprof, str } = decode(toPprof(profile, { ...options, mode }));
      expect(pprof.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`)).toEqual(['samples/count']);
      expect(pprof.sample.every((sample) => sample.value.length === 1)).toBe(true);
    }
    const { pprof, str } = decode(toPprof(profile, { mode: 'WALL', durationSeconds: 1, timeNanos: 0 }));
    expect(pprof.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`)).toEqual(['samples/count']);
  });

  it('puts no thread label on a stack without a thread', () => {
    const { pprof } = decode(toPprof(parseCollapsed('a;b 3\n'), options));

    expect(pprof.sample[0]?.label).toEqual([]);
  });
});

/** `go` on PATH, or in the default install directory (CI and this machine). */
function findGo(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/go/bin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'go');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

const go = findGo();
if (!go) console.warn('profile-pprof: `go` is not installed, so `go tool pprof` cannot check the encoding (skipped)');

describe.runIf(go)('go tool pprof reads the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ffp-pprof-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists the hot method first in -top', async () => {
    const file = join(dir, 'cpu-hot-a.pb.gz');
    writeFileSync(file, toPprof(profile, options));

    const { stdout } = await promisify(execFile)(go as string, ['tool', 'pprof', '-top', file], {
      timeout: 60_000,
      env: { ...process.env, PPROF_TMPDIR: dir },
    });

    const rows = stdout.split('\n').filter((line) => /^\s+\S+\s+[\d.]+%/.test(line));
    expect(rows[0]).toMatch(/\sBusy\.hotA$/);
    expect(stdout).toMatch(/Type: cpu/);
    expect(stdout).toMatch(/Duration: 5s/);
  }, 90_000);
});
