import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { PROFILE_BEGIN, PROFILE_END } from '#domain/agent-output.ts';

/**
 * Gzip of `<html>`, `mib` MiB of zeros and `</html>`, built without ever holding the HTML: a gzip stream may be several
 * members one after the other, so one member of 1 MiB of zeros (about 1 KB) is repeated. 2048 MiB take about 2 MB.
 */
export function gzippedZerosHtml(mib: number): Buffer {
  const zeros = gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
  return Buffer.concat([gzipSync('<html>'), ...Array.from({ length: mib }, () => zeros), gzipSync('</html>')]);
}

/** The agent's FINISHED stdout carrying `gzipped` (base64, 76 characters a line) as its flame graph. */
export function finishedStdoutWith(gzipped: Buffer): string {
  const lines = gzipped.toString('base64').match(/.{1,76}/g) ?? [];
  const vouched = `sha256=${createHash('sha256').update(gzipped).digest('hex')} bytes=${gzipped.length}`;
  return [
    `FLINK_PROFILER_RESULT status=FINISHED pid=4242 mode=ITIMER ${vouched} message=Profiling Successful`,
    PROFILE_BEGIN,
    ...lines,
    PROFILE_END,
    '',
  ].join('\n');
}

/** A gzip stream that is damaged in its middle (its deflate data overwritten). */
export function corruptGzip(): Buffer {
  const gzipped = gzipSync(`<!DOCTYPE html><html>${'x'.repeat(10_000)}</html>`);
  gzipped.fill(0xff, 12, 40);
  return gzipped;
}

/** Peak resident memory of this process so far, in bytes (VmHWM of /proc/self/status). */
export async function peakRssBytes(): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile('/proc/self/status', 'utf8');
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (!kib) throw new Error('no VmHWM in /proc/self/status');
  return Number(kib) * 1024;
}
