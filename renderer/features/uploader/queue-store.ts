import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

/** A photo on its way to the relay, kept in IndexedDB so a reload or a crash loses nothing. */
export interface QueuedPhoto {
  key: string;
  name: string;
  description: string;
  /** Dropped once the relay has the photo. */
  blob?: Blob;
  previewType: string;
  state: 'waiting' | 'done' | 'failed';
  attempts: number;
  nextAttemptAt: number;
  photoId?: string;
  error?: string;
  createdAt: number;
}

interface Schema extends DBSchema {
  photos: { key: string; value: QueuedPhoto };
}

let database: Promise<IDBPDatabase<Schema>> | undefined;

function db(): Promise<IDBPDatabase<Schema>> {
  database ??= openDB<Schema>('photo-relay-uploader', 1, {
    upgrade(upgrade) {
      upgrade.createObjectStore('photos', { keyPath: 'key' });
    },
  });
  return database;
}

export async function allPhotos(): Promise<QueuedPhoto[]> {
  const photos = await (await db()).getAll('photos');
  return photos.sort((a, b) => b.createdAt - a.createdAt);
}

export async function putPhoto(photo: QueuedPhoto): Promise<void> {
  await (await db()).put('photos', photo);
}

export async function deletePhoto(key: string): Promise<void> {
  await (await db()).delete('photos', key);
}
