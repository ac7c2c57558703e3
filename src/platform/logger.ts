import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout stays free for CLI output). Secrets never reach a logger:
 * the redact list is a second line of defence for fields that must never be printed.
 */
export function createLogger(name: string, level = process.env.XRD_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: ['pin', '*.pin', 'oldPin', 'newPin', 'soPin', '*.soPin'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that drops everything, for library users and tests that don't want output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
