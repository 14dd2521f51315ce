import { DeleteObjectsCommand, GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { storedKindOf } from '#domain/artifacts.ts';
import type { ArtifactStore, LinkDisposition } from '#domain/ports.ts';

/** S3 allows at most this many keys per DeleteObjects call. */
const DELETE_BATCH = 1000;

export interface S3ArtifactStoreOptions {
  /**
   * Host name that links point at instead of the S3 endpoint: a CloudFront distribution whose only origin is this
   * bucket, at its regional name, that forwards the query string but not the viewer's Host (infra/artifact-links.ts).
   * The link stays S3's own presigned URL; only its host changes.
   */
  linkDomain?: string;
}

/**
 * ArtifactStore on S3: files stored compressed, those gzip-compressed with `Content-Encoding: gzip` so browsers
 * inflate them on the fly, each with its Content-Type (by its key's ending), and presigned GET links signed on
 * demand, valid for minutes.
 */
export class S3ArtifactStore implements ArtifactStore {
  private readonly linkDomain: string | undefined;

  /**
   * @param client client for reads and writes
   * @param signer client for presigning; build it with `requestChecksumCalculation` and
   *   `responseChecksumValidation` set to 'WHEN_REQUIRED', or checksum parameters end up in the links
   */
  constructor(
    private readonly client: S3Client,
    private readonly signer: S3Client,
    private readonly bucket: string,
    options: S3ArtifactStoreOptions = {},
  ) {
    this.linkDomain = options.linkDomain;
  }

  async put(key: string, body: Buffer): Promise<void> {
    const { contentType, contentEncoding } = storedKindOf(key);
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: contentType,
        ...(contentEncoding ? { ContentEncoding: contentEncoding } : {}),
      }),
    );
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return object.Body ? Buffer.from(await object.Body.transformToByteArray()) : undefined;
    } catch (error) {
      if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const result = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const failed = result.Errors ?? [];
      if (failed.length > 0) {
        throw new Error(
          `S3 refused to delete ${failed.length} object(s), e.g. ${failed[0]?.Key}: ${failed[0]?.Message}`,
        );
      }
    }
  }

  async link(
    key: string,
    options: { fileName: string; disposition: LinkDisposition; expiresInSeconds: number },
  ): Promise<string> {
    const signed = await getSignedUrl(
      this.signer,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ResponseContentDisposition: `${options.disposition}; filename="${options.fileName}"`,
      }),
      { expiresIn: options.expiresInSeconds },
    );
    return this.linkDomain ? this.throughLinkDomain(signed, this.linkDomain) : signed;
  }

  /**
   * The presigned URL with its host swapped for `domain`. S3 checks a SigV4 query signature against the request's
   * Host, and CloudFront sends its origin's domain name as Host when the viewer's is not forwarded: the link is
   * valid through the distribution exactly when it was signed for the bucket's regional virtual-hosted name, the
   * origin's domain. Anything else (a custom endpoint, path style, FIPS or dual-stack names) would be a link that
   * S3 refuses, so it fails here instead, naming both hosts.
   */
  private async throughLinkDomain(signed: string, domain: string): Promise<string> {
    const { protocol, host } = new URL(signed);
    const regional = `${this.bucket}.s3.${await this.signer.config.region()}.amazonaws.com`;
    if (protocol !== 'https:' || (host !== regional && host !== `${regional}.cn`))
      throw new Error(
        `cannot link through ${domain}: the link is signed for ${protocol}//${host}, not for https://${regional}, the bucket's regional name that the distribution's origin sends as Host`,
      );
    return `https://${domain}${signed.slice(`${protocol}//${host}`.length)}`;
  }
}
