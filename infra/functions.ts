import { type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { type CfnStage, HttpApi, HttpRoute, HttpRouteKey } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { CfnScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import { DERIVED_PREFIX } from '#domain/artifacts.ts';
import { ENV } from '../functions/shared/config.ts';
import { FailedInvocations } from './failed-invocations.ts';
import { LAMBDA_HANDLER, type LambdaName } from './lambda-bundles.ts';
import { lambdaCode } from './lambda-code.ts';
import { acknowledge } from './nag.ts';
import type { Guardrails } from './settings.ts';
import { defaultDomainPrefix, SIGN_IN_SCOPES } from './sign-in.ts';

export interface FunctionsProps {
  table: dynamodb.ITableV2;
  artifacts: s3.IBucket;
  /** Host name of the artifact distribution, where the API's flame-graph links point (infra/artifact-links.ts). */
  artifactDomain: string;
  ssmOutputPrefix: string;
  documentName: string;
  documentVersion: string;
  clusterTag: string;
  roleTag: string;
  logRetentionDays: number;
  /** The hosted sign-in domain's prefix; unset: `defaultDomainPrefix`. */
  cognitoDomainPrefix?: string;
  /** EC2 tag naming a node's teams. */
  teamTag: string;
  /** Cognito group whose members see everything; created here. */
  adminGroup: string;
  guardrails: Guardrails;
  /** Where rules' schedules go (the API writes them, the tick function is their target). */
  rules: { scheduleGroup: CfnScheduleGroup; schedulerRole: iam.IRole };
}

const TERMINAL_STATUSES = ['Success', 'Failed', 'TimedOut', 'Cancelled'];

/**
 * The Lambda functions and what calls them: the API behind an HTTP API with a Cognito JWT authorizer, the
 * completion function on SSM status-change events of our document only, the reconciler on a schedule, the rule
 * tick on rules' schedules. The API gets its route in `signInFrom`, once the web UI's URL is known.
 */
export class Functions extends Construct {
  readonly api: HttpApi;
  readonly userPool: cognito.UserPool;
  /** Cognito's hosted sign-in, deployed always. */
  readonly signInDomain: cognito.UserPoolDomain;
  readonly adminGroup: cognito.CfnUserPoolGroup;
  readonly handlers: Record<LambdaName, lambda.Function>;
  /** Where the completion, reconciler and tick functions' failed invocations go, alarmed. */
  readonly failedInvocations: FailedInvocations;
  private webClient?: cognito.UserPoolClient;

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const environment: Record<string, string> = {
      [ENV.table]: props.table.tableName,
      [ENV.bucket]: props.artifacts.bucketName,
      [ENV.ssmOutputPrefix]: props.ssmOutputPrefix,
      [ENV.documentName]: props.documentName,
      [ENV.documentVersion]: props.documentVersion,
      [ENV.clusterTag]: props.clusterTag,
      [ENV.roleTag]: props.roleTag,
      POWERTOOLS_SERVICE_NAME: 'flink-fleet-profiler',
    };

    /** A construct's logical id, as cdk-nag writes it in finding ids (`<LogicalId.Arn>`). */
    const stackRef = (construct: Construct) => stack.resolve((construct.node.defaultChild as CfnElement).logicalId);
    const makeFunction = (name: LambdaName, timeout: Duration) =>
      new lambda.Function(this, `${name[0]?.toUpperCase()}${name.slice(1)}Function`, {
        // Bundled at synth as the tests and benchmarks build it (infra/lambda-bundles.ts); never Docker.
        code: lambdaCode(name),
        handler: LAMBDA_HANDLER,
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 512,
        timeout,
        environment,
        logGroup: new logs.LogGroup(this, `${name}Logs`, { retention: props.logRetentionDays as logs.RetentionDays }),
      });
    this.handlers = {
      api: makeFunction('api', Duration.seconds(29)),
      completion: makeFunction('completion', Duration.seconds(60)),
      reconciler: makeFunction('reconciler', Duration.minutes(2)),
      // A rule over hundreds of nodes sends batches of 50 one after another, with backoff when throttled.
      tick: makeFunction('tick', Duration.minutes(5)),
    };
    const { api, completion, reconciler, tick } = this.handlers;

    // The API writes rules' schedules: it names the group, the target and the role the schedules use. Only the
    // API gets these (the tick function referring to its own ARN would be a cycle).
    api.addEnvironment(ENV.scheduleGroup, props.rules.scheduleGroup.ref);
    api.addEnvironment(ENV.tickFunctionArn, tick.functionArn);
    api.addEnvironment(ENV.schedulerRoleArn, props.rules.schedulerRole.roleArn);
    // Only the API signs flame-graph links; they point at the artifact distribution, never at the UI's origin.
    api.addEnvironment(ENV.artifactDomain, props.artifactDomain);
    // Who sees what, and how much one request or firing may start: both the API and the rule tick enforce it.
    const optional = (name: string, value: number | undefined) => (value === undefined ? {} : { [name]: `${value}` });
    const teams: Record<string, string> = {
      [ENV.teamTag]: props.teamTag,
      [ENV.adminGroup]: props.adminGroup,
      ...optional(ENV.maxFanOut, props.guardrails.maxFanOut),
      ...optional(ENV.minRuleInterval, props.guardrails.minRuleIntervalSeconds),
      ...optional(ENV.maxFiringSeconds, props.guardrails.maxFiringSeconds),
    };
    for (const fn of [api, tick]) for (const [name, value] of Object.entries(teams)) fn.addEnvironment(name, value);
    tick.grantInvoke(props.rules.schedulerRole);
    acknowledge(props.rules.schedulerRole, {
      [`AwsSolutions-IAM5[Resource::<${stackRef(tick)}.Arn>:*]`]:
        'The schedules may invoke the tick function only (any of its versions).',
    });

    // ---- permissions, least privilege ----
    const objects = (prefix: string) => props.artifacts.arnForObjects(`${prefix}*`);
    for (const fn of [api, completion, reconciler, tick]) {
      props.table.grantReadWriteData(fn);
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ReadProfilesAndCommandOutput',
          // Presigned links are signed with the function's credentials: it must be able to read the profiles.
          actions: ['s3:GetObject'],
          resources: [objects('profiles/'), objects(DERIVED_PREFIX), objects(props.ssmOutputPrefix)],
        }),
      );
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'WriteAndTrimProfiles',
          actions: ['s3:PutObject', 's3:DeleteObject'],
          // derived/: differential and merged views, put for their links (the bucket expires them).
          resources: [objects('profiles/'), objects(DERIVED_PREFIX)],
        }),
      );
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          // Without ListBucket a missing output object reads as AccessDenied instead of NoSuchKey.
          sid: 'TellMissingOutputObjects',
          actions: ['s3:ListBucket'],
          resources: [props.artifacts.bucketArn],
          conditions: { StringLike: { 's3:prefix': [`${props.ssmOutputPrefix}*`, 'profiles/*'] } },
        }),
      );
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ReadCommandInvocations',
          actions: ['ssm:GetCommandInvocation'],
          resources: ['*'],
        }),
      );
    }
    // Runs start from the API and from rules' ticks; both send only our document to tagged instances.
    for (const fn of [api, tick]) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'SendOurDocument',
          actions: ['ssm:SendCommand'],
          resources: [stack.formatArn({ service: 'ssm', resource: 'document', resourceName: props.documentName })],
        }),
      );
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'SendToProfilerNodesOnly',
          actions: ['ssm:SendCommand'],
          resources: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
          conditions: { StringLike: { [`ssm:resourceTag/${props.clusterTag}`]: '*' } },
        }),
      );
      // Discovery reads the cluster, role and team tags of EC2 instances through the Tagging API.
      fn.addToRolePolicy(
        new iam.PolicyStatement({ sid: 'FindFlinkNodes', actions: ['tag:GetResources'], resources: ['*'] }),
      );
      // Discovery asks SSM which tagged instances it manages and whether their agents answer. And when SSM refuses
      // a batch for one unmanaged node (InvalidInstanceId), the dispatcher asks which ones are managed, fails those
      // that are not and sends the rest.
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'TellManagedNodes',
          actions: ['ssm:DescribeInstanceInformation'],
          resources: ['*'],
        }),
      );
    }
    const schedules = stack.formatArn({
      service: 'scheduler',
      resource: 'schedule',
      resourceName: `${props.rules.scheduleGroup.ref}/*`,
    });
    api.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteRuleSchedules',
        actions: [
          'scheduler:CreateSchedule',
          'scheduler:UpdateSchedule',
          'scheduler:DeleteSchedule',
          'scheduler:GetSchedule',
        ],
        resources: [schedules],
      }),
    );
    api.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'PassTheSchedulerRole',
        actions: ['iam:PassRole'],
        resources: [props.rules.schedulerRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
    for (const fn of [api, completion, reconciler, tick]) {
      acknowledge(fn, {
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
          'The basic execution role only lets the function write its own logs.',
        'AwsSolutions-IAM5[Resource::*]':
          'ssm:GetCommandInvocation, ssm:DescribeInstanceInformation and tag:GetResources support no resource-level permissions.',
        [`AwsSolutions-IAM5[Resource::<${stackRef(props.table as unknown as Construct)}.Arn>/index/*]`]:
          "The function queries the run table's indexes.",
        [`AwsSolutions-IAM5[Resource::<${stackRef(props.artifacts as unknown as Construct)}.Arn>/profiles/*]`]:
          'Flame graphs live under profiles/; the function stores, signs links to and trims them.',
        [`AwsSolutions-IAM5[Resource::<${stackRef(props.artifacts as unknown as Construct)}.Arn>/${DERIVED_PREFIX}*]`]:
          'Differential and merged views live under derived/ (expired by the bucket); the function stores them and signs links to them.',
        [`AwsSolutions-IAM5[Resource::<${stackRef(props.artifacts as unknown as Construct)}.Arn>/${props.ssmOutputPrefix}*]`]:
          'The function reads the node agent output that SSM writes under this prefix.',
        'AwsSolutions-L1': 'The runtime is pinned to Node.js 22, the version the bundles target; it moves with them.',
      });
    }
    for (const fn of [api, tick]) {
      acknowledge(fn, {
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]':
          'SendCommand reaches only instances that carry the profiler cluster tag (ssm:resourceTag condition).',
      });
    }
    acknowledge(api, {
      [`AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/<${stack.resolve(props.rules.scheduleGroup.logicalId)}>/*]`]:
        "One schedule per rule, all in the profiler's own schedule group.",
    });

    // ---- the HTTP API, signed in with Cognito ----
    this.userPool = new cognito.UserPool(this, 'Users', {
      selfSignUpEnabled: false,
      signInAliases: { username: true, email: true },
      passwordPolicy: {
        minLength: 12,
        requireDigits: true,
        requireLowercase: true,
        requireUppercase: true,
        requireSymbols: true,
      },
      mfa: cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
    });
    acknowledge(this.userPool, {
      'AwsSolutions-COG2':
        'MFA is optional (TOTP) so that teams can roll it out; required MFA is a user-pool setting to turn on.',
    });
    this.signInDomain = this.userPool.addDomain('SignIn', {
      cognitoDomain: { domainPrefix: props.cognitoDomainPrefix ?? defaultDomainPrefix(this) },
    });
    // A team is a Cognito group that people are added to by hand; only the admin group is the stack's.
    this.adminGroup = new cognito.CfnUserPoolGroup(this.userPool, 'AdminGroup', {
      userPoolId: this.userPool.userPoolId,
      groupName: props.adminGroup,
      description: 'Flink Fleet Profiler admins: see and change every cluster, run and rule, whatever its team',
    });

    // No route yet: the JWT authorizer needs the web client, which needs the UI's URL, which needs this API.
    this.api = new HttpApi(this, 'HttpApi', { description: 'Flink Fleet Profiler API', createDefaultStage: true });
    this.node.addValidation({
      validate: () => (this.webClient ? [] : ['The API has no route: call signInFrom(<the UI URL>) on Functions']),
    });
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: props.logRetentionDays as logs.RetentionDays,
    });
    const stage = this.api.defaultStage?.node.defaultChild as CfnStage;
    stage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      format: JSON.stringify({
        requestId: '$context.requestId',
        ip: '$context.identity.sourceIp',
        method: '$context.httpMethod',
        path: '$context.path',
        status: '$context.status',
        user: '$context.authorizer.claims.username',
      }),
    };
    stage.defaultRouteSettings = { throttlingBurstLimit: 50, throttlingRateLimit: 25 };

    // ---- asynchronous invocations: retries, then a record in the failed-invocations queue ----
    // EventBridge (completion, reconciler) and EventBridge Scheduler (tick) invoke these functions asynchronously.
    // Two layers of retry, for two kinds of failure:
    // - delivery, the service putting the event into Lambda's queue (refused invoke, missing permission, throttled
    //   Invoke API): the rule target's or the schedule's own RetryPolicy and dead-letter queue;
    // - execution, the function throwing or timing out: Lambda's async retry, set by each EventInvokeConfig below.
    // A failed execution never reaches a target's dead-letter queue, and a delivery failure never reaches Lambda's.
    // Both kinds land in the one queue below, whose alarm fires on the first message. Maximum event ages are
    // counted by each layer from when it got the event, and each layer's age fits what the event is still good for.
    this.failedInvocations = new FailedInvocations(this, 'FailedInvocations');
    const failed = this.failedInvocations;
    // The api function has none: API Gateway invokes it synchronously, and the caller sees its error.
    // Completion: an hour, as for its delivery. SSM sends the event when the command has ended, and a run's deadline
    // is only the settle margin (minutes) after its command's last possible end: an hour later the reconciler has
    // asked SSM itself and settled the run, and the event has nothing left to tell.
    failed.configure(completion, { maxEventAge: Duration.hours(1) });
    // Reconciler: 5 minutes. Each pass sweeps every RUNNING run and a new one starts every minute, so a pass that
    // could not start within 5 minutes is superseded; the 2 quick retries (after about 1 and 2 more minutes) fit.
    failed.configure(reconciler, { maxEventAge: Duration.minutes(5) });
    // Tick: 10 minutes. Room for both retries of a failing tick, or one retry after a 5-minute timeout; later, the
    // rule's next firing (every 5 minutes at the shortest by default) has usually been claimed, and an older firing
    // then fires nothing anyway. A firing given up here is recorded in the queue, not repeated.
    failed.configure(tick, { maxEventAge: Duration.minutes(10) });
    // Tick delivery is the schedules' business: the API writes each schedule with RetryPolicy 10 attempts within
    // an hour and a DeadLetterConfig naming this queue (functions/adapters/aws/eventbridge-rule-scheduler.ts).
    // Scheduler sends there with the schedule's own role, not as a service principal, so the role may send to it.
    // Rules still alarms on InvocationDroppedCount: a firing dropped when even that send failed.
    api.addEnvironment(ENV.scheduleDeadLetterArn, failed.queue.queueArn);
    failed.queue.grantSendMessages(props.rules.schedulerRole);

    // ---- completion: SSM status changes of our document only ----
    new events.Rule(this, 'CommandStatusChanges', {
      description: "Status changes of the profiler's SSM commands, to the completion function",
      eventPattern: {
        source: ['aws.ssm'],
        detailType: ['EC2 Command Invocation Status-change Notification'],
        detail: { 'document-name': [props.documentName], status: TERMINAL_STATUSES },
      },
      targets: [
        new targets.LambdaFunction(completion, {
          // Delivery only (see above): an output object not in S3 yet makes the function throw, which Lambda
          // retries (EventInvokeConfig); the reconciler is the backstop.
          retryAttempts: 8,
          maxEventAge: Duration.hours(1),
          deadLetterQueue: failed.queue,
        }),
      ],
    });

    // ---- reconciler: every minute ----
    new events.Rule(this, 'ReconcileSchedule', {
      description: 'Settles profiling runs whose completion never came',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [
        new targets.LambdaFunction(reconciler, {
          // Delivery only, and as short-lived as the pass itself (EventBridge's default keeps trying for a day).
          retryAttempts: 2,
          maxEventAge: Duration.minutes(5),
          deadLetterQueue: failed.queue,
        }),
      ],
    });
  }

  /**
   * The web UI's app client, and the API's one route behind it (every request needs a token of that client).
   * `uiUrl` is where the hosted sign-in returns to and sign-out lands: the UI's URL, with its trailing slash.
   */
  signInFrom(uiUrl: string): cognito.UserPoolClient {
    if (this.webClient) throw new Error('Functions.signInFrom: the web client exists already');
    this.webClient = this.userPool.addClient('WebClient', {
      // SRP for scripts and user-password so that teams can get a token with the AWS CLI (see README); the UI
      // signs in through the hosted pages with the authorization code flow and PKCE: a public client, no secret.
      authFlows: { userSrp: true, userPassword: true },
      generateSecret: false,
      oAuth: {
        flows: { authorizationCodeGrant: true, implicitCodeGrant: false, clientCredentials: false },
        scopes: SIGN_IN_SCOPES,
        callbackUrls: [uiUrl],
        logoutUrls: [uiUrl],
        defaultRedirectUri: uiUrl,
      },
      supportedIdentityProviders: [cognito.UserPoolClientIdentityProvider.COGNITO],
      accessTokenValidity: Duration.hours(1),
      idTokenValidity: Duration.hours(1),
    });
    new HttpRoute(this.api, 'DefaultRoute', {
      httpApi: this.api,
      routeKey: HttpRouteKey.DEFAULT,
      integration: new HttpLambdaIntegration('Api', this.handlers.api),
      authorizer: new HttpJwtAuthorizer(
        'CognitoJwt',
        `https://cognito-idp.${Stack.of(this).region}.amazonaws.com/${this.userPool.userPoolId}`,
        // Cognito access tokens carry client_id, which the HTTP API compares with the audience too.
        { jwtAudience: [this.webClient.userPoolClientId] },
      ),
    });
    return this.webClient;
  }
}
