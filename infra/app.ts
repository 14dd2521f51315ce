import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readDeploymentSettings } from './settings.ts';
import { FlinkFleetProfilerStack } from './stack.ts';

/** Builds the CDK app: the stack, checked by cdk-nag's AWS Solutions rules. */
export function createApp(app = new App()): { app: App; stack: FlinkFleetProfilerStack } {
  const settings = readDeploymentSettings(app, join(import.meta.dirname, '..', 'web', 'dist'));
  const stack = new FlinkFleetProfilerStack(app, 'FlinkFleetProfiler', {
    description: 'Flink Fleet Profiler: async-profiler flame graphs for fleets of Flink clusters on EC2',
    settings,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  createApp().app.synth();
}
