import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import busboy from 'busboy';
import { PhotoRelayError } from '../../shared/errors.ts';

export const MAX_DESCRIPTION_LENGTH = 1000;
const MAX_FILENAME_LENGTH = 1024;
/** The leading bytes kept in memory: the format's signature and, nearly always, its header. */
export const HEAD_BYTES = 64 * 1024;

/** The photo as received: a temporary file in the data folder, never held whole in memory. */
export interface ReceivedFile {
  /** `<dataDir>/incoming/<uuid>.tmp`: the caller moves it into the store or discards it. */
  path: string;
  size: number;
  /** The first HEAD_BYTES bytes (or the whole file when shorter). */
  head: Buffer;
  /** sha256 over the file's bytes, not finalized (copy() it to add more and digest). */
  hash: Hash;
}

export interface UploadForm {
  image: ReceivedFile;
  originalFilename: string;
  description: string;
}

export interface FormOptions {
  /** Largest photo accepted (MAX_UPLOAD_SIZE). */
  maxBytes: number;
  /** A fresh temporary path in the data folder (PhotoStore.incomingPath). */
  tempPath: () => string;
  /** No byte for this long: E_UPLOAD_TIMEOUT. */
  idleMs: number;
  /** The whole body must have arrived within this long: E_UPLOAD_TIMEOUT. */
  timeoutMs: number;
}

/**
 * Uploads sent with `Expect: 100-continue` whose "100 Continue" waits for readUploadForm (the
 * server's checkContinue listener adds them; app.ts), so a refused one never sends its body.
 */
export const continueLater = new WeakSet<ServerResponse>();

/** Whether a request is an upload (its body is read by readUploadForm). */
export function isUploadRequest(req: IncomingMessage): boolean {
  return req.method === 'POST' && /^\/upload\/?(?:\?|$)/.test(req.url ?? '');
}

const badForm = (detail: string) => new PhotoRelayError('E_BAD_FORM', detail);

/** Removes a received photo that was not stored. */
export async function discardUpload(file: ReceivedFile): Promise<void> {
  await rm(file.path, { force: true });
}

/**
 * Destroys a file stream (it may still be opening) and, once it has let go of its descriptor,
 * removes its file. It waits for 'close' only: a stream that failed emits 'error' first, and
 * removing the file before the descriptor is closed would leave it behind on Windows.
 */
async function removeReceived(
  stream: WriteStream | undefined,
  file: ReceivedFile | undefined,
): Promise<void> {
  if (stream && !stream.closed) {
    const released = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    stream.destroy();
    await released;
  }
  if (file) await discardUpload(file).catch(() => undefined);
}

/**
 * Reads the original API's form: exactly one file in `image`, an optional `description`. The
 * file streams to a temporary file in the data folder (at most `maxBytes`, enforced while it
 * streams), hashed on the way, its first bytes kept for the probe; its declared type and name
 * are kept only as data: the content is identified from its bytes later. File names are read as
 * UTF-8 (`写真.jpg` stays `写真.jpg`). A refusal stops reading at once and removes the temporary
 * file; the error handler then drains what is left of the body (lingering-close.ts).
 *
 * An `Expect: 100-continue` request (continueLater) is told to send its body only here, once the
 * cheaper checks (PIN, rate, queue) have passed: curl then never sends a body that is refused.
 */
export function readUploadForm(
  req: IncomingMessage,
  res: ServerResponse,
  options: FormOptions,
): Promise<UploadForm> {
  const { maxBytes } = options;
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    const tooLarge = () =>
      new PhotoRelayError(
        'E_FILE_TOO_LARGE',
        `The file is larger than the relay's limit of ${(maxBytes / 1024 / 1024).toFixed(0)} MB.`,
      );
    // Refuse what is certainly too big before reading a byte of it (form overhead allowed).
    if (Number.isFinite(declared) && declared > maxBytes + 256 * 1024) {
      reject(tooLarge());
      return;
    }
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        // The name is kept exactly as sent (it is only ever data, never a path).
        preservePath: true,
        // Browsers send a UTF-8 name in the plain `filename="…"`; busboy's default is latin1.
        defParamCharset: 'utf8',
        limits: { fileSize: maxBytes, files: 5, fields: 20, fieldSize: 64 * 1024, parts: 30 },
      });
    } catch {
      reject(
        badForm('The upload must be multipart/form-data with the photo in the field "image".'),
      );
      return;
    }
    let image: ReceivedFile | undefined;
    let written = false;
    let parsed = false;
    let originalFilename = '';
    let description = '';
    let files = 0;
    let settled = false;
    let out: WriteStream | undefined;
    const timeout = (detail: string) => new PhotoRelayError('E_UPLOAD_TIMEOUT', detail);
    const deadline = setTimeout(
      () =>
        fail(
          timeout(
            `The upload took longer than ${Math.round(options.timeoutMs / 1000)} s. Send it again on a better connection.`,
          ),
        ),
      options.timeoutMs,
    );
    let idle: NodeJS.Timeout | undefined;
    const stillSending = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () =>
          fail(
            timeout(
              `The upload stalled (nothing arrived for ${Math.round(options.idleMs / 1000)} s). Send it again.`,
            ),
          ),
        options.idleMs,
      );
    };
    const stopTimers = () => {
      clearTimeout(deadline);
      clearTimeout(idle);
    };
    /**
     * Stops reading, removes the temporary file, rejects (once). busboy goes on with the chunk it
     * is parsing (a refused description is often followed by the photo in the same chunk), so
     * the 'file' and 'field' handlers look at `settled` first and open nothing after a refusal;
     * the file removed is the one open when fail() runs.
     */
    function fail(refusal: PhotoRelayError): void {
      if (settled) return;
      settled = true;
      stopTimers();
      req.unpipe(parser);
      req.off('data', stillSending);
      // The parser is not destroyed: fail() runs inside its events, and busboy goes on with the
      // chunk after them (destroying it there crashes it); unpiped, it is sent nothing more. The
      // rest of the body is the error handler's (lingering-close.ts).
      void removeReceived(out, image).finally(() => reject(refusal));
    }
    const finish = () => {
      if (settled || !parsed || (image && !written)) return;
      settled = true;
      stopTimers();
      req.off('data', stillSending);
      if (files === 0 || !image) reject(badForm('No photo: send the file in the field "image".'));
      else if (image.size === 0) {
        void discardUpload(image).then(() => reject(new PhotoRelayError('E_EMPTY_FILE')), reject);
      } else resolve({ image, originalFilename, description });
    };

    parser.on('file', (field, stream, info) => {
      if (settled) {
        stream.resume();
        return;
      }
      files++;
      if (field !== 'image') {
        fail(badForm(`Unexpected file field "${field}": send the photo in the field "image".`));
        stream.resume();
        return;
      }
      if (files > 1 || image) {
        fail(badForm('Send exactly one file per upload.'));
        stream.resume();
        return;
      }
      originalFilename = (info.filename ?? '').slice(0, MAX_FILENAME_LENGTH);
      const received: ReceivedFile = {
        path: options.tempPath(),
        size: 0,
        head: Buffer.alloc(0),
        hash: createHash('sha256'),
      };
      image = received;
      const heads: Buffer[] = [];
      let headLength = 0;
      const file = createWriteStream(received.path, { flags: 'wx' });
      out = file;
      file.on('error', (error) =>
        fail(
          new PhotoRelayError('E_STORAGE_FAILED', undefined, {
            cause: error,
          }),
        ),
      );
      // 'close', not 'finish': the photo is handed on only once its descriptor is closed.
      file.on('close', () => {
        if (!file.writableFinished) return; // destroyed: fail() has it
        written = true;
        received.head = Buffer.concat(heads);
        finish();
      });
      stream.on('data', (chunk: Buffer) => {
        received.size += chunk.length;
        received.hash.update(chunk);
        if (headLength < HEAD_BYTES) {
          const part = chunk.subarray(0, HEAD_BYTES - headLength);
          heads.push(Buffer.from(part));
          headLength += part.length;
        }
      });
      stream.on('limit', () => fail(tooLarge()));
      stream.pipe(file);
    });
    parser.on('field', (field, value, info) => {
      // Extra text fields are ignored, as FastAPI did; nothing is read after a refusal.
      if (settled || field !== 'description') return;
      if (info.valueTruncated || Array.from(value).length > MAX_DESCRIPTION_LENGTH) {
        fail(new PhotoRelayError('E_DESCRIPTION_TOO_LONG'));
        return;
      }
      description = value;
    });
    parser.on('filesLimit', () => fail(badForm('Send exactly one file per upload.')));
    parser.on('error', (error: Error) =>
      fail(badForm(`The upload form is malformed: ${error.message}`)),
    );
    parser.on('close', () => {
      parsed = true;
      finish();
    });
    // A client that goes away mid-upload must not leave this promise pending forever.
    req.on('close', () => {
      if (!req.complete) fail(badForm('The upload was interrupted before it finished.'));
    });
    req.on('data', stillSending);
    stillSending();
    if (continueLater.delete(res)) res.writeContinue();
    req.pipe(parser);
  });
}
