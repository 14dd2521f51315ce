import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { S3Client } from '@aws-sdk/client-s3';
import { S3ArtifactStore } from '#adapters/aws/s3-artifact-store.ts';
import { DirectoryArtifactStore } from '#adapters/local/directory-artifact-store.ts';
import { DomainError } from '#domain/errors.ts';
import { createBucket } from '#test/support/aws-resources.ts';
import { describeArtifactStoreContract } from './artifact-store.contract.ts';

describeArtifactStoreContract('directory (local mode)', async () => {
  const store = new DirectoryArtifactStore(
    mkdtempSync(join(tmpdir(), 'ffp-artifacts-')),
    Buffer.from('contract-secret-0123'),
    () => 'http://local.test',
  );
  return {
    store,
    // The local server's /artifacts route: check the link, then serve the object.
    follow: async (link) => {
      try {
        const opened = await store.open(Object.fromEntries(new URL(link).searchParams));
        return {
          status: 200,
          html: gunzipSync(opened.body).toString('utf8'),
          disposition: `${opened.disposition}; filename="${opened.fileName}"`,
        };
      } catch (error) {
        if (error instanceof DomainError) return { status: error.status };
        throw error;
      }
    },
  };
});

describeArtifactStoreContract('S3 (AWS)', async () => {
  const bucket = await createBucket();
  const signer = new S3Client({
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    store: new S3ArtifactStore(new S3Client({}), signer, bucket),
    follow: async (link) => {
      const response = await fetch(link);
      if (!response.ok) return { status: response.status };
      // moto does not apply response-content-disposition; the link's own parameter is what S3 would send.
      const disposition =
        response.headers.get('content-disposition') ?? new URL(link).searchParams.get('response-content-disposition');
      return { status: response.status, html: await response.text(), disposition: disposition ?? undefined };
    },
  };
});
