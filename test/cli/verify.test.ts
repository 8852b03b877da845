/**
 * Archive layers are measured by seeking over file bodies (headers only, so a changed body goes
 * unseen); --verify streams and hashes them, and catches it.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { parseTarFile } from '../../src/layers/tar.js';
import { openSource, resolveImage } from '../../src/sources/open.js';
import { ballast, oneLineError } from '../support/cli.js';
import { dockerFixtures } from '../support/fixtures.js';

let reference: string;

before(async () => {
  const docker = await dockerFixtures();
  const tampered = join(await mkdtemp(join(tmpdir(), 'ballast-verify-')), 'tampered.tar');
  await copyFile(docker.dockerArchive.path, tampered);
  reference = `docker-archive:${tampered}`;
  const source = await openSource(reference);
  try {
    const image = await resolveImage(source);
    let target: number | undefined;
    for (const diffId of image.config.rootfs.diff_ids) {
      const range = await source.layerFileRange?.(diffId);
      if (!range || target !== undefined) continue;
      await parseTarFile(range.path, { offset: range.offset, length: range.length }, (entry) => {
        if (target === undefined && entry.type === 'file' && entry.size > 0)
          target = range.offset + entry.dataOffset;
      });
    }
    assert.ok(target !== undefined, 'no file body to change in the archive');
    const handle = await open(tampered, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, target);
    byte[0] = (byte[0] ?? 0) ^ 0x5a;
    await handle.write(byte, 0, 1, target);
    await handle.close();
  } finally {
    await source.close();
  }
});

test('seeking reads headers only: a changed file body goes unseen', async () => {
  const result = await ballast(['history', reference]);
  assert.equal(result.code, 0, result.stderr);
});

test('--verify hashes every layer and refuses the changed one', async () => {
  for (const args of [
    ['history', '--verify'],
    ['sizes', '--exact', '--verify'],
    ['analyze', '--verify'],
  ]) {
    const result = await ballast([...args, reference]);
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    assert.match(oneLineError(result), /does not match its digest/);
  }
});
