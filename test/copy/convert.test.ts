import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { convertImageManifest, convertIndex, ociMediaType } from '../../src/copy/convert.js';
import { type CopyEvent, copyImage } from '../../src/copy/copy.js';
import { OciLayoutDestination } from '../../src/copy/oci-layout-destination.js';
import { BallastError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { parseReference } from '../../src/reference/parse.js';
import { openSource } from '../../src/sources/open.js';
import type { ImageSource } from '../../src/sources/types.js';
import { type OciFixtures, ociFixtures } from '../support/fixtures.js';
import { run } from '../support/registry.js';

let work: string;
let oci: OciFixtures;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ballast-convert-'));
  oci = await ociFixtures();
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function writeBlob(layout: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(bytes);
  await writeFile(join(layout, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/**
 * A layout holding a Docker manifest list (as `skopeo copy --format v2s2` or docker buildx push make
 * them), built by hand from the multi-platform fixture's configs and layers.
 */
async function dockerListLayout(): Promise<{ dir: string; listDigest: string; children: string[] }> {
  const dir = join(work, 'docker-list');
  const from = oci.ociMulti.dir;
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const entries: unknown[] = [];
  const children: string[] = [];
  for (const image of oci.ociMulti.images) {
    const original = JSON.parse(
      await readFile(join(from, 'blobs', 'sha256', image.manifestDigest.slice(7)), 'utf8'),
    );
    for (const blob of [original.config, ...original.layers]) {
      await copyFile(
        join(from, 'blobs', 'sha256', blob.digest.slice(7)),
        join(dir, 'blobs', 'sha256', blob.digest.slice(7)),
      );
    }
    const manifest = Buffer.from(
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: MediaType.dockerManifest,
          config: { ...original.config, mediaType: MediaType.dockerConfig },
          layers: original.layers.map((l: object) => ({ ...l, mediaType: MediaType.dockerLayer })),
        },
        null,
        3,
      ),
    );
    const written = await writeBlob(dir, manifest);
    children.push(written.digest);
    entries.push({
      mediaType: MediaType.dockerManifest,
      ...written,
      platform: { architecture: image.architecture, os: 'linux' },
    });
  }
  const list = await writeBlob(
    dir,
    Buffer.from(
      JSON.stringify(
        { schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests: entries },
        null,
        3,
      ),
    ),
  );
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: MediaType.dockerManifestList,
          ...list,
          annotations: { 'org.opencontainers.image.ref.name': 'list' },
        },
      ],
    }),
  );
  return { dir, listDigest: list.digest, children };
}

describe('conversion functions', () => {
  test('media types', () => {
    assert.equal(ociMediaType(MediaType.dockerManifest), MediaType.ociManifest);
    assert.equal(ociMediaType(MediaType.dockerManifestList), MediaType.ociIndex);
    assert.equal(ociMediaType(MediaType.dockerConfig), MediaType.ociConfig);
    assert.equal(ociMediaType(MediaType.dockerLayer), MediaType.ociLayerGzip);
    assert.equal(ociMediaType(MediaType.dockerLayerUncompressed), MediaType.ociLayer);
    assert.equal(ociMediaType(MediaType.dockerLayerForeign), MediaType.ociLayerNondistributableGzip);
    assert.equal(ociMediaType(MediaType.ociLayerZstd), MediaType.ociLayerZstd);
  });

  test('an image manifest keeps digests, sizes, urls and annotations', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const out = JSON.parse(
      convertImageManifest(
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MediaType.dockerManifest,
            config: { mediaType: MediaType.dockerConfig, digest, size: 3 },
            layers: [{ mediaType: MediaType.dockerLayerForeign, digest, size: 5, urls: ['https://x/y'] }],
            annotations: { a: 'b' },
          }),
        ),
      ).toString(),
    );
    assert.deepEqual(out, {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest, size: 3 },
      layers: [{ mediaType: MediaType.ociLayerNondistributableGzip, digest, size: 5, urls: ['https://x/y'] }],
      annotations: { a: 'b' },
    });
  });

  test('an index points at the converted children', () => {
    const [a, b, c] = ['a', 'b', 'c'].map((x) => `sha256:${x.repeat(64)}`) as [string, string, string];
    const out = JSON.parse(
      convertIndex(
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MediaType.dockerManifestList,
            manifests: [
              {
                mediaType: MediaType.dockerManifest,
                digest: a,
                size: 1,
                platform: { os: 'linux', architecture: 'amd64' },
              },
              { mediaType: MediaType.ociManifest, digest: b, size: 2 },
            ],
          }),
        ),
        new Map([[a, { digest: c, size: 9, mediaType: MediaType.ociManifest }]]),
      ).toString(),
    );
    assert.equal(out.mediaType, MediaType.ociIndex);
    assert.deepEqual(out.manifests[0], {
      mediaType: MediaType.ociManifest,
      digest: c,
      size: 9,
      platform: { os: 'linux', architecture: 'amd64' },
    });
    assert.deepEqual(out.manifests[1], { mediaType: MediaType.ociManifest, digest: b, size: 2 });
  });
});

describe('a Docker manifest list into an OCI layout', () => {
  test('is converted whole: children and index rewritten, blobs untouched, reported', async () => {
    const { dir, listDigest, children } = await dockerListLayout();
    const target = join(work, 'converted-list');
    const source = await openSource(`oci:${dir}:list`);
    const destination = await OciLayoutDestination.open(parseReference(`oci:${target}:list`));
    const events: CopyEvent[] = [];
    const result = await copyImage(source, destination, { onEvent: (e) => events.push(e) });
    await destination.close();
    await source.close();
    assert.equal(result.converted, true);
    assert.equal(result.sourceDigest, listDigest);
    assert.equal(result.mediaType, MediaType.ociIndex);
    assert.equal(events.filter((e) => e.type === 'converted').length, 3, 'two children and the list');

    const index = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${target}:list`])).stdout);
    assert.equal(index.mediaType, MediaType.ociIndex);
    assert.equal(sha256(Buffer.from(JSON.stringify(index))), result.digest);
    for (const [i, entry] of (index.manifests as { digest: string; mediaType: string }[]).entries()) {
      assert.equal(entry.mediaType, MediaType.ociManifest);
      assert.notEqual(entry.digest, children[i]);
      const child = JSON.parse(
        await readFile(join(target, 'blobs', 'sha256', entry.digest.slice(7)), 'utf8'),
      );
      assert.equal(child.mediaType, MediaType.ociManifest);
      assert.equal(child.config.digest, oci.ociMulti.images[i]?.configDigest, 'config bytes kept');
      assert.equal(
        sha256(await readFile(join(target, 'blobs', 'sha256', child.config.digest.slice(7)))),
        child.config.digest,
      );
    }
    // Each converted image validates on its own.
    const arm = index.manifests[1];
    await writeFile(
      join(target, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ ...arm, annotations: { 'org.opencontainers.image.ref.name': 'arm' } }],
      }),
    );
    await run('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=arm', target]);
  });

  test('is refused with preserveDigests before any blob is written', async () => {
    const { dir } = await dockerListLayout();
    const target = join(work, 'refused-list');
    const source = await openSource(`oci:${dir}:list`);
    const destination = await OciLayoutDestination.open(parseReference(`oci:${target}:list`));
    const events: CopyEvent[] = [];
    await assert.rejects(
      copyImage(source, destination, { preserveDigests: true, onEvent: (e) => events.push(e) }),
      (error: unknown) => {
        assert.ok(BallastError.is(error));
        assert.equal(error.code, 'MEDIA_TYPE_UNSUPPORTED');
        return true;
      },
    );
    await source.close();
    assert.ok(!events.some((e) => e.type === 'blob-start'));
  });
});

describe('schema 1', () => {
  test('a schema 1 source is refused with a clear message', async () => {
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 1,
        name: 'x',
        tag: 'y',
        architecture: 'amd64',
        fsLayers: [],
        history: [],
      }),
    );
    const source: ImageSource = {
      reference: parseReference('old/image:1'),
      name: 'docker.io/old/image',
      dockerReference: 'docker.io/old/image',
      getManifest: async () => ({ bytes, mediaType: MediaType.dockerSchema1Signed, digest: sha256(bytes) }),
      getBlob: async () => Readable.from([]),
      close: async () => {},
    };
    const destination = await OciLayoutDestination.open(parseReference(`oci:${join(work, 'schema1')}:x`));
    await assert.rejects(copyImage(source, destination), (error: unknown) => {
      assert.ok(BallastError.is(error));
      assert.match(error.message, /schema 1/);
      assert.ok(error.hint);
      return true;
    });
  });
});
