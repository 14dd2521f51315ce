import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { isProfilingMode, type ProfilingMode } from './modes.ts';

/**
 * The node agent's result protocol on stdout (functions/node-agent/flink-profiler-agent.sh prints it):
 *
 *   FLINK_PROFILER_RESULT status=FINISHED pid=<pid> mode=<MODE> sha256=<hex> bytes=<n>[ collapsed=<hex>:<n> jfr=<hex>:<n>] message=<rest of the line>
 *   -----BEGIN FLINK PROFILE-----
 *   <base64 of the gzip-compressed HTML flame graph, wrapped>
 *   -----END FLINK PROFILE-----
 *   -----BEGIN FLINK PROFILE collapsed-----   (with collapsed= and jfr= only: a node that can convert the recording)
 *   <base64 of the gzip-compressed collapsed stacks, a thread frame first on each line>
 *   -----END FLINK PROFILE collapsed-----
 *   -----BEGIN FLINK PROFILE jfr-----
 *   <base64 of the gzip-compressed JFR recording the other two were converted from>
 *   -----END FLINK PROFILE jfr-----
 *
 * `mode` is the mode really profiled, and the message "Profiling Successful", with a note in parentheses when the
 * agent had to change the mode: `Profiling Successful (CPU fell back to ITIMER: perf events unavailable on this node)`.
 * A failed run prints only the result line (status=FAILED, no sha256 and bytes) and exits non-zero. `sha256` and
 * `bytes` (and each `<hex>:<n>`) are a gzip payload's digest and length: the payload must match them, and on AWS the
 * line itself must be in SSM's own copy of the output's start (which no other node can write; see
 * ssm-dispatcher.ts).
 */
export const RESULT_LINE_PREFIX = 'FLINK_PROFILER_RESULT ';
export const PROFILE_BEGIN = '-----BEGIN FLINK PROFILE-----';
export const PROFILE_END = '-----END FLINK PROFILE-----';

/** The markers around the payload of section `label` ('' for the flame graph). */
export function sectionMarkers(label: '' | 'collapsed' | 'jfr'): { begin: string; end: string } {
  const name = label ? ` ${label}` : '';
  return { begin: `-----BEGIN FLINK PROFILE${name}-----`, end: `-----END FLINK PROFILE${name}-----` };
}

/**
 * The largest file the service takes from a node, in bytes before compression (the flame graph's HTML, the collapsed
 * stacks, the recording): the node agent's own default limit (FLINK_PROFILER_MAX_HTML_BYTES on a node). A node that
 * allows more gets its larger files refused here.
 */
export const MAX_HTML_BYTES = 64 * 1024 * 1024;

/** How many files a result may carry: the flame graph, the collapsed stacks, the recording. */
const FILES_PER_RESULT = 3;

/**
 * The most agent stdout that can carry its files within {@link MAX_HTML_BYTES} each: base64 (4 characters per 3
 * bytes, a newline per 76) of their gzip (at worst the file plus a little), and the result line. Readers of the
 * agent's output refuse more before they read it.
 */
export const MAX_AGENT_STDOUT_BYTES =
  FILES_PER_RESULT * Math.ceil((((MAX_HTML_BYTES * 1.001 + 65_536) * 4) / 3) * (77 / 76)) + 65_536;

/** How much of the agent's stderr is read: its last lines say why it failed. */
export const MAX_AGENT_STDERR_BYTES = 64 * 1024;

const RESULT_LINE =
  /^FLINK_PROFILER_RESULT status=(FINISHED|FAILED) pid=(\S+) mode=(\S+) (?:sha256=([0-9a-f]{64}) bytes=(\d+) )?(?:collapsed=([0-9a-f]{64}):(\d+) jfr=([0-9a-f]{64}):(\d+) )?message=(.*)$/m;

/** What starts every JFR recording. */
const JFR_MAGIC = Buffer.from('FLR\0', 'latin1');

export interface AgentResult {
  status: 'FINISHED' | 'FAILED';
  pid: number | null;
  /** The mode the agent really used (it may differ from the one asked for, e.g. a CPU run retried in ITIMER). */
  mode: ProfilingMode | null;
  message: string;
  /** The flame graph, gzip-compressed, when the agent sent one that decodes to HTML within the limit. */
  gzippedHtml: Buffer | null;
  /**
   * The same samples as collapsed stacks with thread frames: the gzip the agent sent and its text (within the limit;
   * whether it is a profile is for the profile parser to say). Null when the node sent none or it failed its check.
   */
  collapsed: { gzipped: Buffer; text: string } | null;
  /** The JFR recording, gzip-compressed, when the agent sent one that decodes to a recording within the limit. */
  gzippedJfr: Buffer | null;
  /** Why collapsed stacks or a recording that the result line names were not taken (the flame graph still is). */
  extrasProblem?: string;
  /**
   * Why a FINISHED result carries no flame graph: none or a damaged one arrived, it is over the limit, or it is not
   * the payload the result line vouches for (changed after the agent wrote it, or no digest to check it by).
   */
  profileProblem?: 'damaged' | 'tooLarge' | 'mismatch';
}

type Problem = 'damaged' | 'tooLarge' | 'mismatch';
type Extracted = { gzipped: Buffer; decoded: Buffer } | { problem: Problem };

/** The payload's digest and length as the result line gives them. */
interface Vouched {
  sha256: string;
  bytes: number;
}

/**
 * The payload of one section, checked against what the line vouches for and decoded (within the limit) to prove it
 * whole; `looksRight` then checks the start of what it decodes to.
 */
function extractSection(
  stdout: string,
  label: '' | 'collapsed' | 'jfr',
  vouched: Vouched | undefined,
  looksRight: (decoded: Buffer) => boolean,
): Extracted {
  const markers = sectionMarkers(label);
  const begin = stdout.indexOf(markers.begin);
  const end = stdout.indexOf(markers.end, begin + markers.begin.length);
  if (begin < 0 || end < 0) return { problem: 'damaged' };
  const base64 = stdout.slice(begin + markers.begin.length, end);
  if (base64.length > MAX_AGENT_STDOUT_BYTES) return { problem: 'tooLarge' };
  const gzipped = Buffer.from(base64.replace(/\s+/g, ''), 'base64');
  // Checked before decoding: a payload the line does not vouch for is never decompressed.
  if (!vouched || gzipped.length !== vouched.bytes) return { problem: 'mismatch' };
  if (createHash('sha256').update(gzipped).digest('hex') !== vouched.sha256) return { problem: 'mismatch' };
  try {
    // Decode once to prove the payload is whole (a truncated or corrupt stream throws here) and within the limit: a
    // few MB of gzip can hold gigabytes of HTML, so decoding stops at the limit instead of filling the memory.
    const decoded = gunzipSync(gzipped, { maxOutputLength: MAX_HTML_BYTES });
    return looksRight(decoded) ? { gzipped, decoded } : { problem: 'damaged' };
  } catch (error) {
    return { problem: (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? 'tooLarge' : 'damaged' };
  }
}

function isHtml(decoded: Buffer): boolean {
  const start = decoded.toString('utf8', 0, 512).trimStart().toLowerCase();
  return start.startsWith('<!doctype html') || start.startsWith('<html');
}

const isJfr = (decoded: Buffer) => decoded.subarray(0, JFR_MAGIC.length).equals(JFR_MAGIC);

const PROBLEM_TEXT: Record<Problem, string> = {
  damaged: 'damaged',
  tooLarge: `over the limit of ${MAX_HTML_BYTES} bytes`,
  mismatch: 'not what the result line vouches for',
};

/**
 * Reads the agent's stdout; undefined when it holds no result line at all. Never throws: a damaged or oversized
 * flame graph is a FINISHED result without one, and says which (`profileProblem`).
 */
export function parseAgentOutput(stdout: string): AgentResult | undefined {
  const match = RESULT_LINE.exec(stdout);
  if (!match) return undefined;
  const [, status, pid, mode, sha256, bytes, collapsedSha256, collapsedBytes, jfrSha256, jfrBytes, message] =
    match as unknown as [
      string,
      'FINISHED' | 'FAILED',
      string,
      string,
      string | undefined,
      string | undefined,
      string | undefined,
      string | undefined,
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
    collapsed: null,
    gzippedJfr: null,
  };
  if (status !== 'FINISHED') return result;
  const profile = extractSection(stdout, '', sha256 && bytes ? { sha256, bytes: Number(bytes) } : undefined, isHtml);
  if ('problem' in profile) {
    result.profileProblem = profile.problem;
    return result;
  }
  result.gzippedHtml = profile.gzipped;
  if (!collapsedSha256 || !collapsedBytes || !jfrSha256 || !jfrBytes) return result;

  const collapsed = extractSection(
    stdout,
    'collapsed',
    { sha256: collapsedSha256, bytes: Number(collapsedBytes) },
    () => true,
  );
  const jfr = extractSection(stdout, 'jfr', { sha256: jfrSha256, bytes: Number(jfrBytes) }, isJfr);
  // The extras stand or fall together: they are one recording's, and a diff needs the collapsed stacks.
  if ('problem' in collapsed || 'problem' in jfr) {
    const problems = [
      'problem' in collapsed ? `the collapsed stacks are ${PROBLEM_TEXT[collapsed.problem]}` : undefined,
      'problem' in jfr ? `the recording is ${PROBLEM_TEXT[jfr.problem]}` : undefined,
    ];
    result.extrasProblem = problems.filter(Boolean).join(', ');
    return result;
  }
  result.collapsed = { gzipped: collapsed.gzipped, text: collapsed.decoded.toString('utf8') };
  result.gzippedJfr = jfr.gzipped;
  return result;
}
