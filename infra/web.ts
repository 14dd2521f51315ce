import { type CfnElement, Duration, Fn, Lazy, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import { pageCsp } from '../functions/local/web-assets.ts';
import { WEB_AUTH_CONFIG_FILE, type WebAuthConfig } from '../functions/shared/web-auth-config.ts';
import { acknowledge } from './nag.ts';

export interface WebProps {
  api: HttpApi;
  /** The built UI (`npm run build:web`). */
  assetPath: string;
  accessLogs: s3.IBucket;
}

/**
 * The UI in a private bucket behind CloudFront (origin access control), with `/api/*` going to the HTTP API.
 * The files go in with `publish`, once the sign-in (which needs this distribution's URL) exists.
 */
export class Web extends Construct {
  readonly distribution: cloudfront.Distribution;
  readonly bucket: s3.Bucket;
  /** The UI's URL, `https://<distribution domain>/`: where sign-in returns to. */
  readonly url: string;
  private readonly assetPath: string;
  private published = false;
  /** Origins the UI's page may call besides its own: the sign-in service's (set by `publish`). */
  private signInOrigins: string[] = [];

  constructor(scope: Construct, id: string, props: WebProps) {
    super(scope, id);
    this.assetPath = props.assetPath;
    this.bucket = new s3.Bucket(this, 'Site', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      serverAccessLogsBucket: props.accessLogs,
      serverAccessLogsPrefix: 'site/',
      // The UI is rebuilt from the repository on every deploy.
      removalPolicy: RemovalPolicy.DESTROY,
      autoDeleteObjects: true,
    });

    const apiDomain = Fn.select(2, Fn.split('/', props.api.apiEndpoint));
    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'Flink Fleet Profiler',
      defaultRootObject: 'index.html',
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      enableLogging: true,
      logBucket: props.accessLogs,
      logFilePrefix: 'cloudfront/',
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        responseHeadersPolicy: new cloudfront.ResponseHeadersPolicy(this, 'UiHeaders', {
          comment: "The UI page: local mode's Content-Security-Policy, plus the sign-in service's token endpoint",
          securityHeadersBehavior: {
            contentSecurityPolicy: {
              // The sign-in origin is known once `publish` has the auth config.
              contentSecurityPolicy: Lazy.string({ produce: () => pageCsp(this.signInOrigins) }),
              override: true,
            },
            contentTypeOptions: { override: true },
            frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
            referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.SAME_ORIGIN, override: true },
            strictTransportSecurity: {
              accessControlMaxAge: Duration.days(365),
              includeSubdomains: true,
              override: true,
            },
          },
        }),
      },
      additionalBehaviors: {
        // Same origin for UI and API: the browser needs no CORS, and the JWT goes along in the Authorization header.
        '/api/*': {
          origin: new origins.HttpOrigin(apiDomain, { protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY }),
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
          cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
          originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        },
      },
    });
    acknowledge(this.distribution, {
      'AwsSolutions-CFR1': 'Platform teams anywhere may use the profiler; sign-in guards the API.',
      'AwsSolutions-CFR2': 'A WAF web ACL is an account-level choice; attach one to the distribution where required.',
      'AwsSolutions-CFR4':
        'The default CloudFront certificate allows older TLS; a custom domain with its own certificate enforces TLSv1.2_2021.',
    });

    this.url = `https://${this.distribution.distributionDomainName}/`;
    this.node.addValidation({
      validate: () => (this.published ? [] : ['The site bucket stays empty: call publish(<auth config>) on Web']),
    });
  }

  /** Deploys the built UI and, beside it, `auth.json`: how the UI signs in. */
  publish(auth: WebAuthConfig): void {
    if (this.published) throw new Error('Web.publish: the UI is published already');
    this.published = true;
    // The UI trades its code and refreshes its tokens at the token endpoint: its origin is the one to allow.
    if (auth.kind === 'cognito')
      this.signInOrigins = [Fn.join('', ['https://', Fn.select(2, Fn.split('/', auth.tokenUrl))])];
    new s3deploy.BucketDeployment(this, 'DeployUi', {
      sources: [s3deploy.Source.asset(this.assetPath)],
      destinationBucket: this.bucket,
      // The sync neither uploads a built auth.json nor prunes the stack's.
      exclude: [WEB_AUTH_CONFIG_FILE],
      distribution: this.distribution,
      distributionPaths: ['/*'],
      memoryLimit: 256,
    });
    // A second deployment for the file that holds deploy-time values, so that it alone gets `no-store`: a browser
    // holding an old client id after the client is replaced could not sign in. The UI files keep default caching.
    new s3deploy.BucketDeployment(this, 'DeployAuthConfig', {
      sources: [s3deploy.Source.jsonData(WEB_AUTH_CONFIG_FILE, auth)],
      destinationBucket: this.bucket,
      prune: false,
      cacheControl: [s3deploy.CacheControl.noStore()],
      distribution: this.distribution,
      distributionPaths: [`/${WEB_AUTH_CONFIG_FILE}`],
      memoryLimit: 256,
    });
    // The deployment's singleton function (CDK's own) copies the built UI from the CDK asset bucket.
    const deployer = Stack.of(this).node.children.find((child) =>
      child.node.id.startsWith('Custom::CDKBucketDeployment'),
    );
    if (deployer) {
      const site = Stack.of(this).resolve((this.bucket.node.defaultChild as CfnElement).logicalId);
      acknowledge(deployer, {
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
          "CDK's deployment function writes only its own logs with it.",
        'AwsSolutions-IAM5[Action::s3:GetObject*]': "CDK's BucketDeployment grant: reads the UI asset.",
        'AwsSolutions-IAM5[Action::s3:GetBucket*]': "CDK's BucketDeployment grant on the asset and site buckets.",
        'AwsSolutions-IAM5[Action::s3:List*]': "CDK's BucketDeployment grant: lists what to sync.",
        'AwsSolutions-IAM5[Action::s3:Abort*]': "CDK's BucketDeployment grant: uploads to the site bucket.",
        'AwsSolutions-IAM5[Action::s3:DeleteObject*]': "CDK's BucketDeployment grant: removes stale UI files (prune).",
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]':
          "CDK's asset bucket, where the built UI is staged.",
        [`AwsSolutions-IAM5[Resource::<${site}.Arn>/*]`]: 'The site bucket holds only the built UI.',
        'AwsSolutions-IAM5[Resource::*]': 'CloudFront invalidations support no resource-level permissions.',
        'AwsSolutions-L1': 'CDK picks the runtime of its own deployment function.',
      });
    }
  }
}
