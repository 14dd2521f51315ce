import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as cognito from 'aws-cdk-lib/aws-cognito';
import type { Construct } from 'constructs';
import type { WebAuthConfig } from '../functions/shared/web-auth-config.ts';
import { Functions } from './functions.ts';
import { NodeSide } from './node-side.ts';
import { Rules } from './rules.ts';
import type { DeploymentSettings } from './settings.ts';
import { cognitoSignIn, signInUrl } from './sign-in.ts';
import { Storage } from './storage.ts';
import { Web } from './web.ts';

/** Where SSM writes the node agent's output in the artifacts bucket. */
export const SSM_OUTPUT_PREFIX = 'ssm-output/';

export interface FlinkFleetProfilerStackProps extends StackProps {
  settings: DeploymentSettings;
}

/** The whole service: one construct per subsystem. */
export class FlinkFleetProfilerStack extends Stack {
  readonly storage: Storage;
  readonly nodeSide: NodeSide;
  readonly functions: Functions;
  readonly web: Web;
  readonly rules: Rules;
  /** The web UI's Cognito app client (hosted sign-in, and the CLI sign-in of the README). */
  readonly webClient: cognito.UserPoolClient;
  /** What the stack writes into the site bucket as `auth.json`. */
  readonly webAuth: WebAuthConfig & { kind: 'cognito' };

  constructor(scope: Construct, id: string, props: FlinkFleetProfilerStackProps) {
    super(scope, id, props);
    const { settings } = props;

    this.storage = new Storage(this, 'Storage', {
      profileRetentionDays: settings.profileRetentionDays,
      ssmOutputRetentionDays: settings.ssmOutputRetentionDays,
      ssmOutputPrefix: SSM_OUTPUT_PREFIX,
    });
    this.nodeSide = new NodeSide(this, 'NodeSide', {
      artifacts: this.storage.artifacts,
      ssmOutputPrefix: SSM_OUTPUT_PREFIX,
    });
    this.rules = new Rules(this, 'Rules');
    this.functions = new Functions(this, 'Functions', {
      table: this.storage.table,
      artifacts: this.storage.artifacts,
      artifactDomain: this.storage.artifactLinks.domainName,
      ssmOutputPrefix: SSM_OUTPUT_PREFIX,
      documentName: this.nodeSide.documentName,
      documentVersion: this.nodeSide.documentVersion,
      clusterTag: settings.clusterTag,
      roleTag: settings.roleTag,
      logRetentionDays: settings.logRetentionDays,
      cognitoDomainPrefix: settings.cognitoDomainPrefix,
      teamTag: settings.teamTag,
      adminGroup: settings.adminGroup,
      guardrails: settings.guardrails,
      rules: { scheduleGroup: this.rules.scheduleGroup, schedulerRole: this.rules.schedulerRole },
    });
    this.web = new Web(this, 'Web', {
      api: this.functions.api,
      assetPath: settings.webAssetPath,
      accessLogs: this.storage.accessLogs,
    });
    // The distribution needs the API; the web client needs the distribution's URL; the API's route (its JWT
    // audience) and the UI's auth.json need the client. Hence this order, and no cycle.
    this.webClient = this.functions.signInFrom(this.web.url);
    this.webAuth = cognitoSignIn(this.functions.signInDomain, this.webClient, this.web.url);
    this.web.publish(this.webAuth);

    new CfnOutput(this, 'Url', {
      value: `https://${this.web.distribution.distributionDomainName}`,
      description: 'The web UI and, under /api/v1, the API',
    });
    new CfnOutput(this, 'NodePolicyArn', {
      value: this.nodeSide.nodePolicy.managedPolicyArn,
      description: 'Attach to the instance role of every Flink node',
    });
    new CfnOutput(this, 'AgentDocumentName', { value: this.nodeSide.documentName });
    new CfnOutput(this, 'FailedInvocationsQueueUrl', {
      value: this.functions.failedInvocations.queue.queueUrl,
      description: 'Failed asynchronous invocations and undeliverable events, alarmed (see infra/README.md)',
    });
    new CfnOutput(this, 'UserPoolId', { value: this.functions.userPool.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { value: this.webClient.userPoolClientId });
    new CfnOutput(this, 'SignInUrl', {
      value: signInUrl(this.webAuth),
      // The UI never trades a code from a sign-in it did not start (no state, no PKCE verifier of its own): landing
      // from this link, it starts its own at once, which Cognito's fresh session lets through without a prompt.
      description: "Cognito's hosted sign-in of the web client; it lands in the UI signed in (opening Url does too)",
    });
  }
}
