import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CopyEvent, type CopyOptions, copyImage } from '../../src/copy/copy.js';
import { OciLayoutDestination } from '../../src/copy/oci-layout-destination.js';
import { BallastError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { parseReference } from '../../src/reference/parse.js';
import { openSource } from '../../src/sources/open.js';
import { type DockerFixtures, dockerFixtures, type OciFixtures, ociFixtures } from '../support/fixtures.js';
import { run } from '../support/registry.js';

let work: string;
let oci: OciFixtures;
let docker: DockerFixtures;

async function copy(from: string, to: string, options: CopyOptions = {}) {
  const source = await openSource(from);
  const destination = await OciLayoutDestination.open(parseReference(to));
  const events: CopyEvent[] = [];
  try {
    const result = await copyImage(source, destination, { ...options, onEvent: (e) => events.push(e) });
    return { result, events };
  } finally {
    await destination.close();
    await source.close();
  }
}

async function rawManifest(ref: string): Promise<Buffer> {
  return Buffer.from((await run('skopeo', ['inspect', '--raw', ref])).stdout, 'utf8');
}

async function skopeoDigest(ref: string): Promise<string> {
  const { stdout } = await run('skopeo', ['inspect', ref]);
  return (JSON.parse(stdout) as { Digest: string }).Digest;
}

async function validate(dir: string, tag: string): Promise<void> {
  await run('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${tag}`, dir]);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ballast-copy-oci-'));
  oci = await ociFixtures();
  docker = await dockerFixtures();
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('OCI layout to OCI layout', () => {
  test('keeps the manifest bytes and digest, validates, and a second copy sends 0 bytes', async () => {
    const dir = join(work, 'exact');
    const { result, events } = await copy(oci.ociApp.reference, `oci:${dir}:app`);
    assert.equal(result.digest, oci.ociApp.manifestDigest);
    assert.equal(result.sourceDigest, oci.ociApp.manifestDigest);
    assert.equal(result.converted, false);
    assert.equal(result.blobsCopied, 4);
    assert.equal(result.blobsSkipped, 0);
    assert.equal(result.manifestsWritten, 1);
    assert.ok(result.bytesCopied > oci.ociApp.bigSize);
    assert.ok(events.some((e) => e.type === 'plan' && e.blobs === 4));
    assert.equal(events.filter((e) => e.type === 'blob-done').length, 4);
    assert.ok(events.some((e) => e.type === 'blob-progress'));

    assert.equal(await skopeoDigest(`oci:${dir}:app`), await skopeoDigest(oci.ociApp.reference));
    assert.deepEqual(await rawManifest(`oci:${dir}:app`), await rawManifest(oci.ociApp.reference));
    await validate(dir, 'app');
    const layout = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'));
    assert.equal(layout.imageLayoutVersion, '1.0.0');

    const again = await copy(oci.ociApp.reference, `oci:${dir}:app`);
    assert.equal(again.result.bytesCopied, 0);
    assert.equal(again.result.blobsCopied, 0);
    assert.equal(again.result.blobsSkipped, 4);
    assert.equal(again.result.digest, oci.ociApp.manifestDigest);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    assert.equal(index.manifests.length, 1, 'the same ref name is replaced, not added twice');
    assert.ok(!(await readdir(join(dir, 'blobs', 'sha256'))).some((name) => name.startsWith('.')));
  });

  test('adds to an existing layout and replaces only the entry with the same ref name', async () => {
    const dir = join(work, 'shared');
    await copy(oci.ociApp.baseReference, `oci:${dir}:one`);
    await copy(oci.ociApp.reference, `oci:${dir}:two`);
    const second = await copy(oci.ociApp.baseReference, `oci:${dir}:two`);
    assert.equal(second.result.bytesCopied, 0, 'every blob of base is already there');
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    const names = index.manifests.map(
      (m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'],
    );
    assert.deepEqual(names.sort(), ['one', 'two']);
    assert.equal(await skopeoDigest(`oci:${dir}:two`), await skopeoDigest(oci.ociApp.baseReference));
    await validate(dir, 'one');
    await validate(dir, 'two');
  });

  test('refuses a folder that is neither empty nor a layout', async () => {
    const dir = join(work, 'not-a-layout');
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'mine');
    await assert.rejects(OciLayoutDestination.open(parseReference(`oci:${dir}:x`)), (error: unknown) => {
      assert.ok(BallastError.is(error));
      assert.equal(error.code, 'LAYOUT_INVALID');
      return true;
    });
  });
});

describe('multi-platform index', () => {
  test('is copied whole: every child, its blobs, then the index, digest kept', async () => {
    const dir = join(work, 'multi');
    const { result, events } = await copy(oci.ociMulti.reference, `oci:${dir}:multi`);
    assert.equal(result.digest, oci.ociMulti.indexDigest);
    assert.equal(result.mediaType, MediaType.ociIndex);
    assert.equal(result.manifestsWritten, 4, 'two images, an attestation, the index');
    assert.equal(result.converted, false);
    assert.deepEqual(await rawManifest(`oci:${dir}:multi`), await rawManifest(oci.ociMulti.reference));
    const manifests = events.filter((e) => e.type === 'manifest');
    assert.equal(manifests.at(-1)?.type === 'manifest' && manifests.at(-1)?.topLevel, true);
    for (const image of oci.ociMulti.images) {
      for (const digest of [image.manifestDigest, image.configDigest]) {
        const bytes = await readFile(join(dir, 'blobs', 'sha256', digest.slice(7)));
        assert.equal(sha256(bytes), digest);
      }
    }
    // skopeo picks each platform out of the copied index the same as out of the source.
    for (const image of oci.ociMulti.images) {
      const args = ['inspect', `--override-arch=${image.architecture}`, '--override-os=linux'];
      const copied = JSON.parse((await run('skopeo', [...args, `oci:${dir}:multi`])).stdout);
      assert.equal(copied.Architecture, image.architecture);
      assert.deepEqual(copied.Layers.length, 1);
    }
  });

  test('with a platform: only that image, which becomes the top-level manifest', async () => {
    const dir = join(work, 'one-platform');
    const arm = oci.ociMulti.images.find((image) => image.architecture === 'arm64')!;
    const { result, events } = await copy(oci.ociMulti.reference, `oci:${dir}:arm`, {
      platform: 'linux/arm64',
    });
    assert.equal(result.digest, arm.manifestDigest);
    assert.equal(result.manifestsWritten, 1);
    assert.equal(result.blobsCopied, 2);
    assert.ok(events.some((e) => e.type === 'platform' && e.platform === 'linux/arm64'));
    assert.equal(await skopeoDigest(`oci:${dir}:arm`), arm.manifestDigest);
    await validate(dir, 'arm');
    const other = oci.ociMulti.images.find((image) => image.architecture === 'amd64')!;
    await assert.rejects(readFile(join(dir, 'blobs', 'sha256', other.configDigest.slice(7))));
  });
});

describe('Docker media types into an OCI layout', () => {
  test('are converted to OCI types, blobs byte-identical, and the conversion is reported', async () => {
    const dir = join(work, 'converted');
    const source = await openSource(docker.dockerArchive.reference);
    const original = await source.getManifest();
    await source.close();
    assert.equal(original.mediaType, MediaType.dockerManifest);

    const { result, events } = await copy(docker.dockerArchive.reference, `oci:${dir}:app`);
    assert.equal(result.converted, true);
    assert.equal(result.sourceDigest, original.digest);
    assert.notEqual(result.digest, original.digest);
    const converted = events.find((e) => e.type === 'converted');
    assert.ok(converted && converted.type === 'converted');
    assert.equal(converted.from, MediaType.dockerManifest);
    assert.equal(converted.to, MediaType.ociManifest);

    const raw = JSON.parse((await rawManifest(`oci:${dir}:app`)).toString());
    const before = JSON.parse(original.bytes.toString());
    assert.equal(raw.mediaType, MediaType.ociManifest);
    assert.equal(raw.config.mediaType, MediaType.ociConfig);
    assert.equal(raw.config.digest, before.config.digest, 'the config bytes, and so its digest, are kept');
    assert.deepEqual(
      raw.layers.map((l: { digest: string }) => l.digest),
      before.layers.map((l: { digest: string }) => l.digest),
    );
    for (const layer of raw.layers)
      assert.match(layer.mediaType, /^application\/vnd\.oci\.image\.layer\.v1\.tar/);
    assert.equal(await skopeoDigest(`oci:${dir}:app`), result.digest);
    await validate(dir, 'app');
  });

  test('are refused with preserveDigests, and the layout is left as it was', async () => {
    const dir = join(work, 'preserve');
    await copy(oci.ociApp.baseReference, `oci:${dir}:base`);
    const indexBefore = await readFile(join(dir, 'index.json'));
    await assert.rejects(
      copy(docker.dockerArchive.reference, `oci:${dir}:app`, { preserveDigests: true }),
      (error: unknown) => {
        assert.ok(BallastError.is(error));
        assert.equal(error.code, 'MEDIA_TYPE_UNSUPPORTED');
        assert.match(error.message, /preserve-digests/);
        return true;
      },
    );
    assert.deepEqual(await readFile(join(dir, 'index.json')), indexBefore);
    await validate(dir, 'base');
  });
});

describe('source errors', () => {
  test('a corrupt blob fails the copy with DIGEST_MISMATCH and leaves no tag and no partial blob', async () => {
    const dir = join(work, 'corrupt');
    await assert.rejects(copy(oci.ociCorrupt.reference, `oci:${dir}:app`), (error: unknown) => {
      assert.ok(BallastError.is(error));
      assert.match(error.code, /DIGEST_MISMATCH|SIZE_MISMATCH/);
      return true;
    });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    assert.deepEqual(index.manifests, []);
    const blobs = await readdir(join(dir, 'blobs', 'sha256'));
    assert.ok(!blobs.includes(oci.ociCorrupt.corruptDigest.slice(7)));
    assert.ok(!blobs.some((name) => name.startsWith('.')), `no temp files left: ${blobs.join(', ')}`);
  });
});
