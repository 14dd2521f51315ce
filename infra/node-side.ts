import { createHash } from 'node:crypto';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { loadAgentDocument } from '../functions/node-agent/ssm-document.ts';
import { acknowledge } from './nag.ts';

export interface NodeSideProps {
  artifacts: s3.IBucket;
  ssmOutputPrefix: string;
}

/**
 * What the Flink nodes need: our SSM Command document, built from the same files local mode runs, and a
 * managed policy for the nodes' instance roles that lets the SSM agent write command output, nothing more.
 */
export class NodeSide extends Construct {
  readonly document: ssm.CfnDocument;
  /** The document's name; it carries a hash of the content, so a changed agent is a new document at version 1. */
  readonly documentName: string;
  readonly documentVersion = '1';
  readonly nodePolicy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: NodeSideProps) {
    super(scope, id);
    // The document as built from the YAML file and the agent script file: the script is deployed as its file's lines.
    const { text, content } = loadAgentDocument();
    this.documentName = `FlinkFleetProfiler-Agent-${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
    this.document = new ssm.CfnDocument(this, 'AgentDocument', {
      name: this.documentName,
      documentType: 'Command',
      documentFormat: 'YAML',
      content,
    });

    this.nodePolicy = new iam.ManagedPolicy(this, 'NodePolicy', {
      description:
        'Attach to the instance role of Flink nodes (with AmazonSSMManagedInstanceCore): lets the SSM agent write the profiler command output.',
      statements: [
        new iam.PolicyStatement({
          // Every node may write every node's output objects: the key puts the bare instance id in the middle
          // (<prefix>/<command id>/<instance id>/…), and no IAM policy variable holds it (see infra/README.md, "Whose
          // output is it"). The functions trust an object only as far as SSM's own copy of its start vouches for it.
          sid: 'WriteProfilerCommandOutput',
          actions: ['s3:PutObject'],
          resources: [props.artifacts.arnForObjects(`${props.ssmOutputPrefix}*`)],
        }),
        new iam.PolicyStatement({
          // The SSM agent checks the bucket's encryption before it uploads output.
          sid: 'ReadOutputBucketEncryption',
          actions: ['s3:GetEncryptionConfiguration'],
          resources: [props.artifacts.bucketArn],
        }),
      ],
    });
    const bucket = Stack.of(this).resolve((props.artifacts.node.defaultChild as CfnElement).logicalId);
    acknowledge(this.nodePolicy, {
      [`AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${props.ssmOutputPrefix}*]`]:
        'The SSM agent names output objects by command and instance id: only this prefix of our bucket can be written.',
    });
  }
}
