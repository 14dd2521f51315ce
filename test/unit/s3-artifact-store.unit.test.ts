import { createHash, createHmac } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '#adapters/aws/s3-artifact-store.ts';

/**
 * S3ArtifactStore.link() with no network: presigning is local. moto checks no signature, so the signature is
 * checked here, by SigV4's rules for query authentication written out independently of the SDK, for the request
 * that CloudFront sends to the bucket: the link's path and query, with the origin's domain name as Host.
 */

const BUCKET = 'ffp-artifacts-0123';
const REGION = 'eu-west-1';
const CREDENTIALS = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  sessionToken: 'session-token-of-the-api-role',
};
const ARTIFACT_DOMAIN = 'd111111abcdef8.cloudfront.net';
/** What the artifact distribution's origin is, and so the Host that S3 sees (infra/artifact-links.ts). */
const ORIGIN_HOST = `${BUCKET}.s3.${REGION}.amazonaws.com`;
const KEY = 'profiles/prod/taskmanager/i-0abc/taskmanager_CPU_2026-01-02_03_04_05.html';
const FILE = 'taskmanager_CPU_2026-01-02_03_04_05.html';

function signer(config: ConstructorParameters<typeof S3Client>[0] = {}): S3Client {
  return new S3Client({
    region: REGION,
    credentials: CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // No AWS_ENDPOINT_URL from the shell: these links are signed for real S3 names unless a test says otherwise.
    ignoreConfiguredEndpointUrls: true,
    ...config,
  });
}

function store(options: { linkDomain?: string } = {}, client = signer()): S3ArtifactStore {
  return new S3ArtifactStore(client, client, BUCKET, options);
}

/** RFC 3986 unreserved characters stay, everything else is %XX: SigV4's URI encoding. */
const uriEncode = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** The signature S3 computes for a GET of `link`'s path and query arriving with `host` as its Host header. */
function signatureS3Expects(link: URL, host: string): string {
  const query = [...link.searchParams]
    .filter(([name]) => name !== 'X-Amz-Signature')
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const signedHeaders = link.searchParams.get('X-Amz-SignedHeaders');
  expect(signedHeaders).toBe('host');
  const canonicalRequest = ['GET', link.pathname, query, `host:${host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const amzDate = link.searchParams.get('X-Amz-Date') as string;
  const [, day, region, service] = (link.searchParams.get('X-Amz-Credential') as string).split('/');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  let key: Buffer = hmac(`AWS4${CREDENTIALS.secretAccessKey}`, day as string);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part as string);
  return createHmac('sha256', key).update(stringToSign).digest('hex');
}

describe('S3ArtifactStore.link', () => {
  it('points an inline link at the artifact domain, with S3’s signature parameters and the inline disposition', async () => {
    const link = new URL(
      await store({ linkDomain: ARTIFACT_DOMAIN }).link(KEY, {
        fileName: FILE,
        disposition: 'inline',
        expiresInSeconds: 300,
      }),
    );

    expect(link.protocol).toBe('https:');
    expect(link.host).toBe(ARTIFACT_DOMAIN);
    expect(link.pathname).toBe(`/${KEY}`);
    const params = link.searchParams;
    expect(params.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(params.get('X-Amz-Credential')).toMatch(
      new RegExp(`^${CREDENTIALS.accessKeyId}/\\d{8}/${REGION}/s3/aws4_request$`),
    );
    expect(params.get('X-Amz-Date')).toMatch(/^\d{8}T\d{6}Z$/);
    expect(params.get('X-Amz-Expires')).toBe('300');
    expect(params.get('X-Amz-Security-Token')).toBe(CREDENTIALS.sessionToken);
    expect(params.get('X-Amz-SignedHeaders')).toBe('host');
    expect(params.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(params.get('response-content-disposition')).toBe(`inline; filename="${FILE}"`);
    expect([...params.keys()].filter((name) => /checksum/i.test(name))).toEqual([]);
  });

  it('keeps a signature that S3 accepts for the request CloudFront sends: origin domain as Host, same path and query', async () => {
    const link = new URL(
      await store({ linkDomain: ARTIFACT_DOMAIN }).link(KEY, {
        fileName: FILE,
        disposition: 'inline',
        expiresInSeconds: 300,
      }),
    );

    expect(signatureS3Expects(link, ORIGIN_HOST)).toBe(link.searchParams.get('X-Amz-Signature'));
    // The check can fail: the same request with the viewer's Host (what forwarding Host would send) does not pass.
    expect(signatureS3Expects(link, ARTIFACT_DOMAIN)).not.toBe(link.searchParams.get('X-Amz-Signature'));
  });

  it('is the very link S3 would hand out, host aside', async () => {
    const options = { fileName: FILE, disposition: 'attachment' as const, expiresInSeconds: 120 };
    const direct = await store().link(KEY, options);
    const through = await store({ linkDomain: ARTIFACT_DOMAIN }).link(KEY, options);

    const [directUrl, throughUrl] = [new URL(direct), new URL(through)];
    expect(directUrl.host).toBe(ORIGIN_HOST);
    expect(throughUrl.host).toBe(ARTIFACT_DOMAIN);
    // Same signing inputs, same second or the next one: compare everything but the time-dependent parameters.
    const stable = (url: URL) =>
      [...url.searchParams].filter(([name]) => !['X-Amz-Date', 'X-Amz-Signature', 'X-Amz-Credential'].includes(name));
    expect(stable(throughUrl)).toEqual(stable(directUrl));
    expect(throughUrl.pathname).toBe(directUrl.pathname);
    expect(throughUrl.searchParams.get('response-content-disposition')).toBe(`attachment; filename="${FILE}"`);
    expect(throughUrl.searchParams.get('X-Amz-Expires')).toBe('120');
    expect(signatureS3Expects(throughUrl, ORIGIN_HOST)).toBe(throughUrl.searchParams.get('X-Amz-Signature'));
  });

  it('links straight to the S3 endpoint when no artifact domain is set (a local endpoint too)', async () => {
    const local = signer({ endpoint: 'http://127.0.0.1:5000', forcePathStyle: true });
    const link = new URL(
      await store({}, local).link(KEY, { fileName: FILE, disposition: 'inline', expiresInSeconds: 60 }),
    );

    expect(link.origin).toBe('http://127.0.0.1:5000');
    expect(link.pathname).toBe(`/${BUCKET}/${KEY}`);
  });

  it('refuses to move a link signed for another host than the origin’s to the artifact domain', async () => {
    const local = signer({ endpoint: 'http://127.0.0.1:5000', forcePathStyle: true });

    await expect(
      store({ linkDomain: ARTIFACT_DOMAIN }, local).link(KEY, {
        fileName: FILE,
        disposition: 'inline',
        expiresInSeconds: 60,
      }),
    ).rejects.toThrow(
      `cannot link through ${ARTIFACT_DOMAIN}: the link is signed for http://127.0.0.1:5000, not for https://${ORIGIN_HOST}`,
    );
  });
});
