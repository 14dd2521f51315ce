import { inject } from 'vitest';

/**
 * Setup file of the integration tier: points every AWS SDK client at the local endpoint before any test
 * module builds one (clients are built with empty configuration and read these variables).
 */
process.env.AWS_ENDPOINT_URL = inject('awsEndpoint');
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'testing';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
// The SDK warns once per process about Node 20's end of support; Lambda runs Node 22.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
