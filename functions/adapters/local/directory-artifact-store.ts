import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { DERIVED_LIFETIME_DAYS, DERIVED_PREFIX } from '#domain/artifacts.ts';
import { ForbiddenError, NotFoundError, ValidationError } from '#domain/errors.ts';
import type { ArtifactStore, LinkDisposition } from '#domain/ports.ts';

/** The query of a local link; every field is covered by the signature. */
export interface LinkQuery {
  key?: string;
  disposition?: string;
  expires?: string;
  signature?: string;
}

export interface OpenedArtifact {
  /** The object as stored: compressed as its key's kind is (see artifacts.ts). */
  body: Buffer;
  fileName: string;
  disposition: LinkDisposition;
}

/**
 * ArtifactStore on a directory, with links that work like S3 presigned GETs: the query names the object,
 * how to serve it and until when, and an HMAC over all of it makes a tampered or expired link useless.
 */
export class DirectoryArtifactStore implements ArtifactStore {
  private readonly root: string;

  /**
   * @param root directory holding the objects (compressed, one file per key)
   * @param secret HMAC key; keep it across restarts so links handed out before a restart stay valid
   * @param baseUrl where the local server serves `/artifacts/…`, e.g. `http://127.0.0.1:8080`; a function
   *   when the server's port is known only once it listens
   */
  constructor(
    root: string,
    private readonly secret: Buffer,
    private readonly baseUrl: () => string,
    private readonly now: () => number = Date.now,
  ) {
    this.root = resolve(root);
  }

  /** The file of a key; keys come from the domain, but a key that would escape the root is refused anyway. */
  private pathOf(key: string): string {
    const path = resolve(this.root, key);
    if (!path.startsWith(this.root + sep)) throw new ValidationError(`key: '${key}' is outside the artifact store`);
    return path;
  }

  async put(key: string, body: Buffer): Promise<void> {
    const path = this.pathOf(key);
    if (key.startsWith(DERIVED_PREFIX)) await this.sweepDerived();
    await mkdir(dirname(path), { recursive: true });
    // Write aside and rename, so a reader never sees half a file.
    // Unique per write, not per process: two settles of one run may write the same key at once.
    const partial = `${path}.partial-${randomUUID()}`;
    await writeFile(partial, body);
    await rename(partial, path);
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Removes derived views older than their lifetime, as the bucket's lifecycle rule does on AWS. */
  private async sweepDerived(): Promise<void> {
    const base = this.pathOf(DERIVED_PREFIX.replace(/\/$/, ''));
    const cutoff = this.now() - DERIVED_LIFETIME_DAYS * 24 * 3600 * 1000;
    const entries = await readdir(base, { withFileTypes: true }).catch(() => []);
    await Promise.all(
      entries.map(async (entry) => {
        const path = join(base, entry.name);
        const info = await stat(path).catch(() => undefined);
        if (info && info.mtimeMs < cutoff) await rm(path, { recursive: true, force: true });
      }),
    );
  }

  async delete(keys: string[]): Promise<void> {
    await Promise.all(keys.map((key) => rm(this.pathOf(key), { force: true })));
  }

  async link(
    key: string,
    options: { fileName: string; disposition: LinkDisposition; expiresInSeconds: number },
  ): Promise<string> {
    const expires = String(Math.floor(this.now() / 1000) + options.expiresInSeconds);
    const query = new URLSearchParams({
      key,
      disposition: options.disposition,
      expires,
      signature: this.sign(key, options.disposition, expires),
    });
    return `${this.baseUrl()}/artifacts/${encodeURIComponent(options.fileName)}?${query}`;
  }

  /** Checks a link and reads its object: ForbiddenError when tampered with or expired, NotFoundError when gone. */
  async open(query: LinkQuery): Promise<OpenedArtifact> {
    const { key, disposition, expires, signature } = query;
    if (!key || !expires || !signature || (disposition !== 'inline' && disposition !== 'attachment')) {
      throw new ForbiddenError('link: incomplete; ask the API for a fresh link');
    }
    const expected = Buffer.from(this.sign(key, disposition, expires), 'hex');
    const given = Buffer.from(signature, 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ForbiddenError('link: signature does not match; ask the API for a fresh link');
    }
    if (!/^\d+$/.test(expires) || Number(expires) * 1000 < this.now()) {
      throw new ForbiddenError('link: expired; ask the API for a fresh link');
    }
    try {
      const body = await readFile(this.pathOf(key));
      return { body, disposition, fileName: key.slice(key.lastIndexOf('/') + 1) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('file: no longer exists');
      throw error;
    }
  }

  /** The local path of a key, for tests and tools that check what is on disk. */
  fileOf(key: string): string {
    return this.pathOf(key);
  }

  private sign(key: string, disposition: string, expires: string): string {
    return createHmac('sha256', this.secret).update(`${key}\n${disposition}\n${expires}`).digest('hex');
  }
}
