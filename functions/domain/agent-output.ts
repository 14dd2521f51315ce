import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { isProfilingMode, type ProfilingMode } from './modes.ts';

/**
 * The node agent's result protocol on stdout (functions/node-agent/flink-profiler-agent.sh prints it):
 *
 *   FLINK_PROFILER_RESULT status=FINISHED pid=<pid> mode=<MODE> sha256=<hex> bytes=<n> message=<rest of the line>
 *   -----BEGIN FLINK PROFILE-----
 *   <base64 of the gzip-compressed HTML flame graph, wrapped>
 *   -----END FLINK PROFILE-----
 *
 * `mode` is the mode really profiled, and the message "Profiling Successful", with a note in parentheses when the
 * agent had to change the mode: `Profiling Successful (CPU fell back to ITIMER: perf events unavailable on this node)`.
 * A failed run prints only the result line (status=FAILED, no sha256 and bytes) and exits non-zero. `sha256` and
 * `bytes` are the gzip payload's digest and length: the payload must match them, and on AWS the line itself must be
 * in SSM's own copy of the output's start (which no other node can write; see ssm-dispatcher.ts).
 */
export const RESULT_LINE_PREFIX = 'FLINK_PROFILER_RESULT ';
export const PROFILE_BEGIN = '-----BEGIN FLINK PROFILE-----';
export const PROFILE_END = '-----END FLINK PROFILE-----';

/**
 * The largest flame graph the service takes, in bytes of HTML: the node agent's own default limit
 * (FLINK_PROFILER_MAX_HTML_BYTES on a node). A node that allows more gets its larger flame graphs refused here.
 */
export const MAX_HTML_BYTES = 64 * 1024 * 1024;

/**
 * The most agent stdout that can carry a flame graph within {@link MAX_HTML_BYTES}: base64 (4 characters per 3 bytes,
 * a newline per 76) of its gzip (at worst the HTML plus a little), and the result line. Readers of the agent's output
 * refuse more before they read it.
 */
export const MAX_AGENT_STDOUT_BYTES = Math.ceil((((MAX_HTML_BYTES * 1.001 + 65_536) * 4) / 3) * (77 / 76)) + 65_536;

/** How much of the agent's stderr is read: its last lines say why it failed. */
export const MAX_AGENT_STDERR_BYTES = 64 * 1024;

const RESULT_LINE =
  /^FLINK_PROFILER_RESULT status=(FINISHED|FAILED) pid=(\S+) mode=(\S+) (?:sha256=([0-9a-f]{64}) bytes=(\d+) )?message=(.*)$/m;

export interface AgentResult {
  status: 'FINISHED' | 'FAILED';
  pid: number | null;
  /** The mode the agent really used (it may differ from the one asked for, e.g. a CPU run retried in ITIMER). */
  mode: ProfilingMode | null;
  message: string;
  /** The flame graph, gzip-compressed, when the agent sent one that decodes to HTML within the limit. */
  gzippedHtml: Buffer | null;
  /**
   * Why a FINISHED result carries no flame graph: none or a damaged one arrived, it is over the limit, or it is not
   * the payload the result line vouches for (changed after the agent wrote it, or no digest to check it by).
   */
  profileProblem?: 'damaged' | 'tooLarge' | 'mismatch';
}

type Extracted = { gzippedHtml: Buffer } | { problem: 'damaged' | 'tooLarge' | 'mismatch' };

/** The payload's digest and length as the result line gives them. */
interface Vouched {
  sha256: string;
  bytes: number;
}

function extractProfile(stdout: string, vouched: Vouched | undefined): Extracted {
  const begin = stdout.indexOf(PROFILE_BEGIN);
  const end = stdout.indexOf(PROFILE_END, begin + PROFILE_BEGIN.length);
  if (begin < 0 || end < 0) return { problem: 'damaged' };
  const base64 = stdout.slice(begin + PROFILE_BEGIN.length, end);
  if (base64.length > MAX_AGENT_STDOUT_BYTES) return { problem: 'tooLarge' };
  const gzipped = Buffer.from(base64.replace(/\s+/g, ''), 'base64');
  // Checked before decoding: a payload the line does not vouch for is never decompressed.
  if (!vouched || gzipped.length !== vouched.bytes) return { problem: 'mismatch' };
  if (createHash('sha256').update(gzipped).digest('hex') !== vouched.sha256) return { problem: 'mismatch' };
  try {
    // Decode once to prove the payload is whole (a truncated or corrupt stream throws here) and within the limit: a
    // few MB of gzip can hold gigabytes of HTML, so decoding stops at the limit instead of filling the memory.
    const html = gunzipSync(gzipped, { maxOutputLength: MAX_HTML_BYTES })
      .toString('utf8', 0, 512)
      .trimStart()
      .toLowerCase();
    return html.startsWith('<!doctype html') || html.startsWith('<html')
      ? { gzippedHtml: gzipped }
      : { problem: 'damaged' };
  } catch (error) {
    return { problem: (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? 'tooLarge' : 'damaged' };
  }
}

/**
 * Reads the agent's stdout; undefined when it holds no result line at all. Never throws: a damaged or oversized
 * flame graph is a FINISHED result without one, and says which (`profileProblem`).
 */
export function parseAgentOutput(stdout: string): AgentResult | undefined {
  const match = RESULT_LINE.exec(stdout);
  if (!match) return undefined;
  const [, status, pid, mode, sha256, bytes, message] = match as unknown as [
    string,
    'FINISHED' | 'FAILED',
    string,
    string,
    string | undefined,
    string | undefined,
    string,
  ];
  const result: AgentResult = {
    status,
    pid: /^\d+$/.test(pid) ? Number(pid) : null,
    mode: isProfilingMode(mode) ? mode : null,
    message: message.trim(),
    gzippedHtml: null,
  };
  if (status !== 'FINISHED') return result;
  const profile = extractProfile(stdout, sha256 && bytes ? { sha256, bytes: Number(bytes) } : undefined);
  if ('gzippedHtml' in profile) result.gzippedHtml = profile.gzippedHtml;
  else result.profileProblem = profile.problem;
  return result;
}
