import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges cdk-nag findings on a construct and its children, each with the reason it is acceptable.
 * Finding ids are exact (`AwsSolutions-IAM5[Resource::…]`), so a new wildcard still fails the checks.
 */
export function acknowledge(construct: IConstruct, reasons: Record<string, string>): void {
  Validations.of(construct).acknowledge(...Object.entries(reasons).map(([id, reason]) => ({ id, reason })));
}
