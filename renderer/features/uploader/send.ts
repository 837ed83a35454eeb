import type { ErrorBody } from '../../../shared/errors';
import type { UploadSuccess } from '../../../shared/protocol';

export type SendOutcome =
  | { kind: 'done'; id: string }
  | { kind: 'retry'; afterMs?: number; reason: string }
  | { kind: 'pin'; message: string }
  | { kind: 'refused'; code: string; message: string };

/**
 * 5xx answers about a photo the relay has stored: sending it again cannot help (the relay
 * answers a resend with the same outcome), and the operator can retry it from the kept original.
 */
const FINAL_SERVER_CODES = new Set(['E_PROCESSING_FAILED', 'E_ENGINE_CRASHED']);

/**
 * One upload with real progress (XMLHttpRequest reports upload progress; fetch does not).
 * Network failures, 429 and other 5xx are retried; other refusals are final. Every attempt
 * carries the outbox key as `Idempotency-Key`, so a resend after a timeout, a dropped Wi-Fi or a
 * relay restart is the same photo, never a second one.
 */
export function sendPhoto(
  blob: Blob,
  name: string,
  description: string,
  pin: string,
  idempotencyKey: string,
  onProgress: (fraction: number) => void,
): Promise<SendOutcome> {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append('image', blob, name);
    if (description) form.append('description', description);
    const request = new XMLHttpRequest();
    request.open('POST', '/upload/');
    request.setRequestHeader('X-Event-Pin', pin);
    request.setRequestHeader('Idempotency-Key', idempotencyKey);
    request.responseType = 'json';
    request.timeout = 120_000;
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    const retry = (reason: string) => resolve({ kind: 'retry', reason });
    request.onerror = () => retry('network');
    request.ontimeout = () => retry('timeout');
    request.onload = () => {
      const body = request.response as
        (Partial<UploadSuccess> & Partial<Omit<ErrorBody, 'status'>>) | null;
      if (request.status === 200 && body?.status === 'success' && body.id) {
        resolve({ kind: 'done', id: body.id });
        return;
      }
      const retryAfter = Number(request.getResponseHeader('Retry-After'));
      if (request.status === 401) {
        resolve({ kind: 'pin', message: body?.message ?? 'PIN' });
      } else if (
        request.status === 429 ||
        (request.status >= 500 && !FINAL_SERVER_CODES.has(body?.code ?? '')) ||
        request.status === 0
      ) {
        resolve({
          kind: 'retry',
          afterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
          reason: body?.code ?? String(request.status),
        });
      } else {
        resolve({
          kind: 'refused',
          code: body?.code ?? String(request.status),
          message: body?.message ?? `HTTP ${request.status}`,
        });
      }
    };
    request.send(form);
  });
}

/** Exponential backoff with full jitter, capped at 30 s. */
export function backoffMs(attempt: number): number {
  const ceiling = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
