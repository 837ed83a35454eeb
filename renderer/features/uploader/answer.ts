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

/** The answer's JSON as read (UploadSuccess or ErrorBody), every field unchecked. */
export interface AnswerBody {
  status?: string;
  id?: string;
  code?: string;
  message?: string;
}

/**
 * What the uploader does with the relay's answer. Network failures, 408 (the upload stalled: a
 * weak signal), 429 and other 5xx are retried; other refusals (413 too large, 415, 422…) are
 * final, with the relay's message.
 */
export function classifyAnswer(
  status: number,
  body: AnswerBody | null,
  retryAfterHeader: string | null,
): SendOutcome {
  if (status === 200 && body?.status === 'success' && body.id) return { kind: 'done', id: body.id };
  if (status === 401) return { kind: 'pin', message: body?.message ?? 'PIN' };
  const retryable =
    status === 0 ||
    status === 408 ||
    status === 429 ||
    (status >= 500 && !FINAL_SERVER_CODES.has(body?.code ?? ''));
  if (retryable) {
    const retryAfter = Number(retryAfterHeader);
    return {
      kind: 'retry',
      afterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
      reason: body?.code ?? String(status),
    };
  }
  return {
    kind: 'refused',
    code: body?.code ?? String(status),
    message: body?.message ?? `HTTP ${status}`,
  };
}
