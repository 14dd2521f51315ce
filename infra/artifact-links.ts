import { Duration } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

/**
 * What a flame graph is served with, as local mode serves it (functions/local/server.ts): the flame graph is HTML
 * and script that a node produced, so it runs sandboxed, in an opaque origin that can reach neither the UI nor the
 * API; never cached, never sniffed, never sending a referrer.
 */
export const ARTIFACT_CSP = 'sandbox allow-scripts';

export interface ArtifactLinksProps {
  artifacts: s3.IBucket;
  accessLogs: s3.IBucket;
}

/**
 * The only way a browser reads flame graphs: a CloudFront distribution of its own (never the UI's, so never the UI's
 * origin) whose only origin is the artifacts bucket, which adds the sandbox that S3 cannot set on an object.
 *
 * Links stay S3 presigned URLs with this distribution's host (functions/adapters/aws/s3-artifact-store.ts); S3
 * checks their signature, so the bucket keeps Block Public Access and the distribution holds no access of its own:
 * - the origin is the bucket's regional domain name (`S3BucketOrigin.withBucketDefaults`), the host the API's
 *   signer signs for;
 * - the viewer's Host is not forwarded: CloudFront then sets Host "to the domain name of the origin" (CloudFront
 *   Developer Guide, "HTTP request headers and CloudFront behavior (custom and Amazon S3 origins)"), which is what
 *   S3 recomputes the SigV4 query signature with (Amazon S3 API Reference, "Authenticating Requests: Using Query
 *   Parameters (AWS Signature Version 4)": `X-Amz-SignedHeaders=host`);
 * - the whole query string is forwarded (the signature, the credential, `response-content-disposition`), with
 *   caching disabled, so each link is its own request to S3 and an expired link is refused by S3;
 * - no origin access control: it would sign the origin request itself, beside the link's own signature.
 * Viewers must use HTTPS, and CloudFront then talks to an S3 origin with the viewer's protocol (Developer Guide,
 * "How CloudFront processes HTTP and HTTPS requests"); the bucket's SSL-only policy refuses anything else too.
 * The headers come from a response-headers policy, which applies to what the origin returns (Developer Guide, "Add
 * or remove HTTP headers in CloudFront responses with a policy").
 */
export class ArtifactLinks extends Construct {
  readonly distribution: cloudfront.Distribution;
  /** The host name links point at, e.g. `d111111abcdef8.cloudfront.net`. */
  readonly domainName: string;

  constructor(scope: Construct, id: string, props: ArtifactLinksProps) {
    super(scope, id);
    const headers = new cloudfront.ResponseHeadersPolicy(this, 'SandboxHeaders', {
      comment: "Flame graphs: local mode's headers, the sandbox first",
      securityHeadersBehavior: {
        contentSecurityPolicy: { contentSecurityPolicy: ARTIFACT_CSP, override: true },
        contentTypeOptions: { override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER, override: true },
        strictTransportSecurity: { accessControlMaxAge: Duration.days(365), includeSubdomains: true, override: true },
      },
      customHeadersBehavior: {
        customHeaders: [{ header: 'Cache-Control', value: 'private, no-store', override: true }],
      },
    });
    // The managed AllViewerExceptHostHeader would also forward the viewer's cookies and other headers; S3 needs
    // only the query string, and the Host stays the origin's either way.
    const queryOnly = new cloudfront.OriginRequestPolicy(this, 'QueryStringOnly', {
      comment: "Flame graphs: the presigned link's query string, no viewer header (Host included), no cookie",
      queryStringBehavior: cloudfront.OriginRequestQueryStringBehavior.all(),
      headerBehavior: cloudfront.OriginRequestHeaderBehavior.none(),
      cookieBehavior: cloudfront.OriginRequestCookieBehavior.none(),
    });
    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'Flink Fleet Profiler flame graphs (sandboxed, presigned links only)',
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      enableLogging: true,
      logBucket: props.accessLogs,
      logFilePrefix: 'cloudfront-artifacts/',
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withBucketDefaults(props.artifacts),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
        originRequestPolicy: queryOnly,
        responseHeadersPolicy: headers,
        // Flame graphs are stored gzip-compressed already.
        compress: false,
      },
    });
    this.domainName = this.distribution.distributionDomainName;
    acknowledge(this.distribution, {
      'AwsSolutions-CFR1': 'Platform teams anywhere may open flame graphs; a presigned link guards each one.',
      'AwsSolutions-CFR2': 'A WAF web ACL is an account-level choice; attach one to the distribution where required.',
      'AwsSolutions-CFR4':
        'The default CloudFront certificate allows older TLS; a custom domain with its own certificate enforces TLSv1.2_2021.',
      'AwsSolutions-CFR7':
        "No origin access control: it would sign origin requests itself, beside the presigned link's signature.",
    });
  }
}
