import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { PhotoRelayError } from '../../shared/errors.ts';

export const MAX_DESCRIPTION_LENGTH = 1000;
const MAX_FILENAME_LENGTH = 1024;

export interface UploadForm {
  image: Buffer;
  originalFilename: string;
  description: string;
}

const badForm = (detail: string) => new PhotoRelayError('E_BAD_FORM', detail);

/**
 * Reads the original API's form: exactly one file in `image`, an optional `description`. The
 * file is held in memory (at most MAX_UPLOAD_SIZE); its declared type and name are kept only as
 * data: the content is identified from its bytes later.
 */
export function readUploadForm(req: IncomingMessage, maxBytes: number): Promise<UploadForm> {
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
        limits: { fileSize: maxBytes, files: 5, fields: 20, fieldSize: 64 * 1024, parts: 30 },
      });
    } catch {
      reject(
        badForm('The upload must be multipart/form-data with the photo in the field "image".'),
      );
      return;
    }
    let image: Buffer | undefined;
    let originalFilename = '';
    let description = '';
    let failure: PhotoRelayError | undefined;
    let files = 0;
    const fail = (error: PhotoRelayError) => {
      failure ??= error;
    };

    parser.on('file', (field, stream, info) => {
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
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('limit', () => fail(tooLarge()));
      stream.on('end', () => {
        image = Buffer.concat(chunks);
      });
    });
    parser.on('field', (field, value, info) => {
      if (field !== 'description') return; // extra text fields are ignored, as FastAPI did
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
      if (failure) reject(failure);
      else if (files === 0 || !image)
        reject(badForm('No photo: send the file in the field "image".'));
      else if (image.length === 0) reject(new PhotoRelayError('E_EMPTY_FILE'));
      else resolve({ image, originalFilename, description });
    });
    // A client that goes away mid-upload must not leave this promise pending forever.
    req.on('close', () => {
      if (!req.complete) reject(badForm('The upload was interrupted before it finished.'));
    });
    req.pipe(parser);
  });
}
