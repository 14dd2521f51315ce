import type { Logger } from '#domain/ports.ts';

/** A Logger that writes one readable line per event to stderr (stdout stays free for the start-up banner). */
export const consoleLogger: Logger = {
  info: (message, details) => write('INFO', message, details),
  warn: (message, details) => write('WARN', message, details),
  error: (message, details) => write('ERROR', message, details),
};

function write(level: string, message: string, details?: Record<string, unknown>): void {
  const suffix = details ? ` ${JSON.stringify(details)}` : '';
  process.stderr.write(`${new Date().toISOString()} ${level} ${message}${suffix}\n`);
}
