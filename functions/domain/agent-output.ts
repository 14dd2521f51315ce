import { gunzipSync } from 'node:zlib';
import { isProfilingMode, type ProfilingMode } from './modes.ts';

/**
 * The node agent's result protocol on stdout (functions/node-agent/flink-profiler-agent.sh prints it):
 *
 *   FLINK_PROFILER_RESULT status=FINISHED pid=<pid> mode=<MODE> message=<rest of the line>
 *   -----BEGIN FLINK PROFILE-----
 *   <base64 of the gzip-compressed HTML flame graph, wrapped>
 *   -----END FLINK PROFILE-----
 *
 * `mode` is the mode really profiled, and the message "Profiling Successful", with a note in parentheses when the
 * agent had to change the mode: `Profiling Successful (CPU fell back to ITIMER: perf events unavailable on this node)`.
 * A failed run prints only the result line (status=FAILED) and exits non-zero.
 */
export const RESULT_LINE_PREFIX = 'FLINK_PROFILER_RESULT ';
export const PROFILE_BEGIN = '-----BEGIN FLINK PROFILE-----';
export const PROFILE_END = '-----END FLINK PROFILE-----';

const RESULT_LINE = /^FLINK_PROFILER_RESULT status=(FINISHED|FAILED) pid=(\S+) mode=(\S+) message=(.*)$/m;

export interface AgentResult {
  status: 'FINISHED' | 'FAILED';
  pid: number | null;
  /** The mode the agent really used (it may differ from the one asked for, e.g. a CPU run retried in ITIMER). */
  mode: ProfilingMode | null;
  message: string;
  /** The flame graph, gzip-compressed, when the agent sent one that decodes to HTML. */
  gzippedHtml: Buffer | null;
}

function extractProfile(stdout: string): Buffer | null {
  const begin = stdout.indexOf(PROFILE_BEGIN);
  const end = stdout.indexOf(PROFILE_END, begin + PROFILE_BEGIN.length);
  if (begin < 0 || end < 0) return null;
  const gzipped = Buffer.from(stdout.slice(begin + PROFILE_BEGIN.length, end).replace(/\s+/g, ''), 'base64');
  try {
    // Decode once to prove the payload is whole: a truncated stream (a lost tail of stdout) throws here.
    const html = gunzipSync(gzipped).toString('utf8', 0, 512).trimStart().toLowerCase();
    return html.startsWith('<!doctype html') || html.startsWith('<html') ? gzipped : null;
  } catch {
    return null;
  }
}

/** Reads the agent's stdout; undefined when it holds no result line at all. */
export function parseAgentOutput(stdout: string): AgentResult | undefined {
  const match = RESULT_LINE.exec(stdout);
  if (!match) return undefined;
  const [, status, pid, mode, message] = match as unknown as [string, 'FINISHED' | 'FAILED', string, string, string];
  return {
    status,
    pid: /^\d+$/.test(pid) ? Number(pid) : null,
    mode: isProfilingMode(mode) ? mode : null,
    message: message.trim(),
    gzippedHtml: status === 'FINISHED' ? extractProfile(stdout) : null,
  };
}
