/**
 * How the web UI signs in, served beside the UI as `auth.json` (the local server answers it; on AWS the CDK
 * stack writes it into the site bucket). Type-only for the UI, which fetches it on start.
 */
export type WebAuthConfig =
  /** Local mode on a loopback address: nobody signs in. */
  | { kind: 'none' }
  /**
   * Local mode on another address: every API request carries `Authorization: Bearer <FLINK_PROFILER_TOKEN>`.
   * The server prints a link `…/#token=<token>` at start; the UI takes the token from it once and keeps it for the tab.
   */
  | { kind: 'token' }
  /** AWS: Cognito's hosted sign-in, authorization code flow with PKCE, no client secret. */
  | {
      kind: 'cognito';
      /** The app client's id (public client: no secret). */
      clientId: string;
      /** `https://<domain>/oauth2/authorize` */
      authorizeUrl: string;
      /** `https://<domain>/oauth2/token` */
      tokenUrl: string;
      /** `https://<domain>/logout` (Cognito takes `client_id` and `logout_uri`). */
      logoutUrl: string;
      /** Where the sign-in returns to and sign-out lands: the UI's own URL (CloudFront's). */
      redirectUri: string;
      scopes: string[];
    };

/** The file name the UI fetches, relative to its own page. */
export const WEB_AUTH_CONFIG_FILE = 'auth.json';
