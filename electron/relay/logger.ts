import pino from 'pino';
import type { LogLevel } from '../config/relay-config.ts';

export type Logger = pino.Logger;

/** JSON lines to stdout (pino), one field set per event so logs stay greppable. */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'photo-relay' } }, destination ?? pino.destination(1));
}
