/**
 * Phone photos are 4–8 MB; the relay shows them at most 1920 px wide. Downscaling on the phone
 * before upload (orientation applied, so the result is upright) saves most of the transfer on a
 * crowded Wi-Fi. The default edge was chosen by measuring upload + processing time (README).
 */
export const DEFAULT_UPLOAD_EDGE = 2048;

/** The edge to downscale to: ?edge=N in the page address overrides the default (for tuning). */
export function uploadEdge(search = location.search): number {
  const edge = Number(new URLSearchParams(search).get('edge'));
  return Number.isInteger(edge) && edge >= 320 && edge <= 8192 ? edge : DEFAULT_UPLOAD_EDGE;
}

export async function downscale(file: File, maxEdge = DEFAULT_UPLOAD_EDGE): Promise<Blob> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return file; // not decodable here (e.g. HEIC on some browsers): let the relay say what it is
  }
  const scale = Math.min(1, maxEdge / Math.max(bitmap.width, bitmap.height));
  if (scale === 1 && file.type === 'image/jpeg') {
    bitmap.close();
    return file;
  }
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  const context = canvas.getContext('2d');
  if (!context) return file;
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise<Blob | null>((resolve) =>
    canvas.toBlob(resolve, 'image/jpeg', 0.9),
  );
  return blob ?? file;
}
