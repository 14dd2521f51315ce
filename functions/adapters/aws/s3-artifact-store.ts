import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ArtifactStore, LinkDisposition } from '#domain/ports.ts';

/** S3 allows at most this many keys per DeleteObjects call. */
const DELETE_BATCH = 1000;

/**
 * ArtifactStore on S3: flame graphs stored gzip-compressed with `Content-Encoding: gzip`, so browsers
 * inflate them on the fly, and presigned GET links signed on demand, valid for minutes.
 */
export class S3ArtifactStore implements ArtifactStore {
  /**
   * @param client client for reads and writes
   * @param signer client for presigning; build it with `requestChecksumCalculation` and
   *   `responseChecksumValidation` set to 'WHEN_REQUIRED', or checksum parameters end up in the links
   */
  constructor(
    private readonly client: S3Client,
    private readonly signer: S3Client,
    private readonly bucket: string,
  ) {}

  async put(key: string, gzippedHtml: Buffer): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: gzippedHtml,
        ContentType: 'text/html; charset=utf-8',
        ContentEncoding: 'gzip',
      }),
    );
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

  link(
    key: string,
    options: { fileName: string; disposition: LinkDisposition; expiresInSeconds: number },
  ): Promise<string> {
    return getSignedUrl(
      this.signer,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ResponseContentDisposition: `${options.disposition}; filename="${options.fileName}"`,
      }),
      { expiresIn: options.expiresInSeconds },
    );
  }
}
