import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { Functions } from './functions.ts';
import { NodeSide } from './node-side.ts';
import { Rules } from './rules.ts';
import type { DeploymentSettings } from './settings.ts';
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
      ssmOutputPrefix: SSM_OUTPUT_PREFIX,
      documentName: this.nodeSide.documentName,
      documentVersion: this.nodeSide.documentVersion,
      clusterTag: settings.clusterTag,
      roleTag: settings.roleTag,
      logRetentionDays: settings.logRetentionDays,
      cognitoDomainPrefix: settings.cognitoDomainPrefix,
      rules: { scheduleGroup: this.rules.scheduleGroup, schedulerRole: this.rules.schedulerRole },
    });
    this.web = new Web(this, 'Web', {
      api: this.functions.api,
      assetPath: settings.webAssetPath,
      accessLogs: this.storage.accessLogs,
    });

    new CfnOutput(this, 'Url', {
      value: `https://${this.web.distribution.distributionDomainName}`,
      description: 'The web UI and, under /api/v1, the API',
    });
    new CfnOutput(this, 'NodePolicyArn', {
      value: this.nodeSide.nodePolicy.managedPolicyArn,
      description: 'Attach to the instance role of every Flink node',
    });
    new CfnOutput(this, 'AgentDocumentName', { value: this.nodeSide.documentName });
    new CfnOutput(this, 'UserPoolId', { value: this.functions.userPool.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { value: this.functions.userPoolClient.userPoolClientId });
  }
}
