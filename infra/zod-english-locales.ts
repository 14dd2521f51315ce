/**
 * Zod's locales index as the Lambda bundles see it (infra/lambda-bundles.ts points zod's own imports of its index
 * here): English, zod's default and the only language the functions show, so `z.locales` is `{ en }`.
 */
export { default as en } from 'zod/v4/locales/en.js';
