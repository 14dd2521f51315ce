import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { vi } from 'vitest';

/**
 * A test-side S3 that answers as real S3 does for a caller without `s3:ListBucket` on the key (moto always says
 * 404): a missing key is 403 AccessDenied, not NoSuchKey. `listBucket: 'by-prefix'` (default) lets ListObjectsV2
 * through, as a ListBucket grant conditioned on `s3:prefix` does (whether S3 counts that grant for GetObject's
 * 404 is not documented); `denied` refuses listing too. Installed on `S3Client.prototype.send` until
 * `vi.restoreAllMocks()`.
 */
export function installS3AsAws(options: { listBucket?: 'by-prefix' | 'denied' } = {}): { refused: string[] } {
  if (vi.isMockFunction(S3Client.prototype.send)) throw new Error('S3Client.prototype.send is already spied on');
  const refused: string[] = [];
  const send = S3Client.prototype.send as (this: S3Client, ...args: unknown[]) => Promise<unknown>;
  const denied = (name: string, key: string | undefined) => {
    refused.push(key ?? '');
    return new S3ServiceException({
      name,
      $fault: 'client',
      // HEAD answers carry no body: the SDK names the error by its status.
      message: name === 'AccessDenied' ? 'Access Denied' : 'UnknownError',
      $metadata: {
        httpStatusCode: 403,
        requestId: crypto.randomUUID().replaceAll('-', '').slice(0, 16).toUpperCase(),
        extendedRequestId: Buffer.from(crypto.randomUUID()).toString('base64'),
        attempts: 1,
        totalRetryDelay: 0,
      },
    });
  };
  vi.spyOn(S3Client.prototype, 'send').mockImplementation(async function (
    this: S3Client,
    command: unknown,
    ...rest: unknown[]
  ) {
    if (command instanceof ListObjectsV2Command && options.listBucket === 'denied') {
      throw denied('AccessDenied', command.input.Prefix);
    }
    try {
      return await send.call(this, command, ...rest);
    } catch (error) {
      const name = (error as Error).name;
      if (command instanceof GetObjectCommand && name === 'NoSuchKey') throw denied('AccessDenied', command.input.Key);
      if (command instanceof HeadObjectCommand && name === 'NotFound') throw denied('Forbidden', command.input.Key);
      throw error;
    }
  } as typeof S3Client.prototype.send);
  return { refused };
}
