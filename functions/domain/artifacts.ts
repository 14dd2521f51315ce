/**
 * The files a run keeps and the ones the service derives from them, and how each is stored: every one compressed,
 * its type told by its key's ending, so the stores serve each with the right headers without being told.
 */

/** The formats a run's profile can be had in (contract: `GET /runs/{id}/profile?format=`). */
export const PROFILE_FORMATS = ['html', 'collapsed', 'pprof', 'jfr'] as const;
export type ProfileFormat = (typeof PROFILE_FORMATS)[number];

export function isProfileFormat(value: string): value is ProfileFormat {
  return (PROFILE_FORMATS as readonly string[]).includes(value);
}

interface StoredKind {
  /** How a stored object's key (and its download's file name) ends. */
  extension: string;
  contentType: string;
  /**
   * 'gzip' when the object is stored gzip-compressed and served with `Content-Encoding: gzip` (browsers and
   * `curl --compressed` inflate it); pprof files are gzip-compressed protobuf by their own definition and are served
   * as they are.
   */
  contentEncoding: 'gzip' | undefined;
}

const KINDS: Record<ProfileFormat, StoredKind> = {
  html: { extension: '.html', contentType: 'text/html; charset=utf-8', contentEncoding: 'gzip' },
  collapsed: { extension: '.collapsed', contentType: 'text/plain; charset=utf-8', contentEncoding: 'gzip' },
  pprof: { extension: '.pb.gz', contentType: 'application/octet-stream', contentEncoding: undefined },
  jfr: { extension: '.jfr', contentType: 'application/octet-stream', contentEncoding: 'gzip' },
};

/** How the object under `key` is stored and served, by the key's ending (unknown endings are served as HTML). */
export function storedKindOf(key: string): StoredKind {
  for (const format of ['collapsed', 'pprof', 'jfr'] as const) {
    if (key.endsWith(KINDS[format].extension)) return KINDS[format];
  }
  return KINDS.html;
}

/** `name.html` → the same name for another format (`name.collapsed`, `name.pb.gz`, `name.jfr`). */
export function withFormat(htmlName: string, format: ProfileFormat): string {
  return htmlName.replace(/\.html$/, '') + KINDS[format].extension;
}

/**
 * Where a run keeps its collapsed stacks as the node sent them, a thread frame first on each stack: what frames,
 * threads, differences and merges are computed from. (The `collapsed` export has no thread frames, as
 * async-profiler writes it without `--threads`.)
 */
export function threadStacksKey(artifactKey: string): string {
  return `${artifactKey.replace(/\.html$/, '')}.threads${KINDS.collapsed.extension}`;
}

/** Every key a run with this flame graph key may have stored: what trimming and a lost race delete. */
export function runArtifactKeys(artifactKey: string): string[] {
  return [...PROFILE_FORMATS.map((format) => withFormat(artifactKey, format)), threadStacksKey(artifactKey)];
}

/**
 * Where views computed on request (differential and merged flame graphs, merged collapsed stacks) are put for their
 * short-lived link: a prefix of their own, which the bucket expires after a day (and the local store sweeps), since
 * they are recomputed from the runs' own files whenever asked for.
 */
export const DERIVED_PREFIX = 'derived/';
export const DERIVED_LIFETIME_DAYS = 1;
