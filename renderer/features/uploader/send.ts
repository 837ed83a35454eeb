import { classifyAnswer, type AnswerBody, type SendOutcome } from './answer';

export type { SendOutcome } from './answer';

/**
 * One upload with real progress (XMLHttpRequest reports upload progress; fetch does not).
 * Every attempt
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
      const body = request.response as AnswerBody | null;
      resolve(classifyAnswer(request.status, body, request.getResponseHeader('Retry-After')));
    };
    request.send(form);
  });
}

/** Exponential backoff with full jitter, capped at 30 s. */
export function backoffMs(attempt: number): number {
  const ceiling = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
