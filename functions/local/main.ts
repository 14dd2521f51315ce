import { API_BASE_PATH } from '#http/app.ts';
import { ConfigError, readLocalConfig } from '#shared/config.ts';
import { consoleLogger } from './log.ts';
import { startLocalServer } from './server.ts';

/** `npm start`: local mode on this machine. */
try {
  const server = await startLocalServer(readLocalConfig());
  console.log(`Flink Fleet Profiler (local mode) is listening on ${server.url} — API at ${server.url}${API_BASE_PATH}`);
  // With a token, the link carries it in the fragment (which browsers never send): the UI reads it from there once.
  console.log(`Open the web UI: ${server.uiUrl}`);
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  if (error instanceof ConfigError) {
    consoleLogger.error(error.message);
    process.exit(2);
  }
  throw error;
}
