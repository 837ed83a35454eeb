/**
 * A random (version 4) UUID, e.g. the uploader's outbox key, which is also the upload's
 * Idempotency-Key.
 *
 * Not `crypto.randomUUID()`: that exists only in a secure context (HTTPS or loopback), and guests
 * open the relay over plain HTTP on a LAN address (`http://192.168.1.20:8000/`), where the call
 * throws "crypto.randomUUID is not a function". `crypto.getRandomValues()` is available in every
 * context, with the same source of randomness.
 */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // variant 10xx (RFC 9562)
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
