/**
 * When the file system fails where it rarely does, the client still gets the real answer and the
 * data folder keeps no orphan: a received upload that cannot be removed does not turn a refusal
 * into a 500, and an original whose folder could not be fsynced after the rename is removed. The
 * failures are injected into node:fs/promises (the relay runs in this process).
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { modelMissingReason, syntheticPhoto } from './helpers.ts';
import { startTestRelay, upload, type TestRelay } from './relay-helpers.ts';

const inject = vi.hoisted(() => ({ rmIncoming: false, syncOriginals: false }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const failure = (code: string) => Object.assign(new Error(`injected ${code}`), { code });
  const rm: typeof real.rm = async (file, options) => {
    if (inject.rmIncoming && String(file).includes(`${path.sep}incoming${path.sep}`))
      throw failure('EBUSY');
    return real.rm(file, options);
  };
  const open = (async (file: Parameters<typeof real.open>[0], ...rest: unknown[]) => {
    // syncDirectory opens the folder read-only to fsync it.
    if (inject.syncOriginals && String(file).endsWith(`${path.sep}originals`)) throw failure('EIO');
    return (real.open as (...args: unknown[]) => ReturnType<typeof real.open>)(file, ...rest);
  }) as typeof real.open;
  return { ...real, default: { ...real, rm, open }, rm, open };
});

const skipReason = await modelMissingReason('u2netp');

describe.skipIf(skipReason)('storage failures', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(async () => {
    inject.rmIncoming = false;
    inject.syncOriginals = false;
    await relay.close();
  });

  test('a refused upload whose temp file cannot be removed is still answered its refusal', async () => {
    inject.rmIncoming = true;
    try {
      const answer = await upload(relay.url, Buffer.from('not a photo at all'));
      expect([answer.status, answer.body.code]).toEqual([415, 'E_UNSUPPORTED_FORMAT']);
    } finally {
      inject.rmIncoming = false;
    }
    // The failure did happen: the temp file is still there (the next start sweeps it).
    const incoming = path.join(relay.dataDir, 'incoming');
    const left = await readdir(incoming);
    expect(left).toHaveLength(1);
    await rm(path.join(incoming, left[0]!));
  });

  test('the folder fsync failing after the rename: 507, and no original is left behind', async () => {
    const originals = path.join(relay.dataDir, 'originals');
    const before = await readdir(originals);
    inject.syncOriginals = true;
    try {
      const answer = await upload(relay.url, await syntheticPhoto(320, 240));
      expect([answer.status, answer.body.code]).toEqual([507, 'E_STORAGE_FAILED']);
    } finally {
      inject.syncOriginals = false;
    }
    expect(await readdir(originals)).toEqual(before);
    expect(await readdir(path.join(relay.dataDir, 'incoming'))).toEqual([]);
    expect(relay.relay.store.list(100)).toEqual([]);
  });
});
