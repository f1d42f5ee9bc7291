import { diag } from '@opentelemetry/api';

/**
 * Telemetry must never break a stream or its settlement: a failure here (a bug of ours, a
 * throwing span processor) is reported through OTel's diagnostic logger and dropped.
 */
export function guarded<T>(record: () => T): T | undefined {
  try {
    return record();
  } catch (error) {
    diag.error('tokenmeter: recording telemetry failed; the stream carries on', error);
    return undefined;
  }
}
