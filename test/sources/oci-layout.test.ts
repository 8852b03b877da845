import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseManifest } from '../../src/image/manifest.js';
import { openSource, resolveImage } from '../../src/sources/open.js';
import { rejectsWith } from '../support/assert.js';
import { type OciFixtures, ociFixtures, run } from '../support/fixtures.js';
import { streamDigest } from '../support/registry.js';

const skopeo = (...args: string[]) => run('skopeo', ['inspect', ...args]);

let fx: OciFixtures;
let scratch: string;
before(async () => {
  fx = await ociFixtures();
  scratch = await mkdtemp(join(tmpdir(), 'ballast-oci-test-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('OciLayoutSource against skopeo (umoci-built app image)', () => {
  it('returns the manifest skopeo --raw prints, byte for byte, with its digest', async () => {
    const source = await openSource(fx.ociApp.reference);
    const stored = await source.getManifest();
    const raw = await skopeo('--raw', fx.ociApp.reference);
    assert.equal(stored.bytes.toString('utf8'), raw);
    const info = JSON.parse(await skopeo(fx.ociApp.reference)) as {
      Digest: string;
      Layers: string[];
      Name?: string;
    };
    assert.equal(stored.digest, info.Digest);
    assert.equal(stored.digest, fx.ociApp.manifestDigest);
    assert.equal(stored.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    const manifest = parseManifest(stored.bytes, stored.mediaType);
    assert.equal(manifest.kind, 'manifest');
    if (manifest.kind === 'manifest')
      assert.deepEqual(
        manifest.layers.map((l) => l.digest),
        info.Layers,
      );
    // skopeo prints no Name for oci: references; ballast names the reference itself.
    assert.equal(info.Name, undefined);
    assert.equal(source.name, `oci:${fx.ociApp.dir}:app`);
    await source.close();
  });

  it('returns the config skopeo --config --raw prints, and real values in it', async () => {
    const source = await openSource(fx.ociApp.reference);
    const image = await resolveImage(source);
    assert.equal(image.configBytes.toString('utf8'), await skopeo('--config', '--raw', fx.ociApp.reference));
    assert.deepEqual(image.config.rootfs.diff_ids, fx.ociApp.diffIds);
    assert.equal(image.config.rootfs.diff_ids.length, 3);
    assert.equal(image.config.author, 'ballast tests');
    assert.deepEqual(image.config.config?.Env, ['PATH=/usr/local/bin:/usr/bin:/bin', 'APP_MODE=test']);
    assert.deepEqual(image.config.config?.Cmd, ['/usr/bin/hello']);
    assert.equal(image.config.config?.Labels?.['com.example.tier'], 'test');
    const history = image.config.history ?? [];
    assert.equal(history.length, 5);
    assert.equal(history.filter((h) => h.empty_layer).length, 2);
  });

  it('streams every layer verified, with the sizes of the descriptors', async () => {
    const source = await openSource(fx.ociApp.reference);
    const image = await resolveImage(source);
    let progressed = 0;
    for (const layer of image.manifest.layers) {
      const got = await streamDigest(
        await source.getBlob(layer, {
          onProgress: (p) => {
            progressed = p.bytes;
          },
        }),
      );
      assert.deepEqual(got, { bytes: layer.size, digest: layer.digest });
      assert.equal(progressed, layer.size);
    }
    // The third layer carries the 1 MiB file: gzip cannot shrink pseudo-random bytes.
    assert.ok(image.manifest.layers[2]!.size > fx.ociApp.bigSize);
  });

  it('lists the ref names as tags and opens the other one', async () => {
    const source = await openSource(fx.ociApp.reference);
    assert.deepEqual((await source.listTags!()).sort(), ['app', 'base']);
    const base = await resolveImage(await openSource(fx.ociApp.baseReference));
    assert.equal(base.manifest.layers.length, 1);
    assert.equal(base.config.rootfs.diff_ids[0], fx.ociApp.diffIds[0]);
  });

  it('reads a manifest by digest and refuses one that is not there', async () => {
    const source = await openSource(fx.ociApp.reference);
    const again = await source.getManifest(fx.ociApp.manifestDigest);
    assert.equal(again.digest, fx.ociApp.manifestDigest);
    await rejectsWith(
      source.getManifest(`sha256:${'0'.repeat(64)}`),
      'NOT_FOUND',
      /sha256:0{64}.*OCI layout/,
    );
  });
});

describe('OciLayoutSource references', () => {
  it('needs REF when the layout holds several images, and lists them', async () => {
    const error = await rejectsWith(
      openSource(`oci:${fx.ociApp.dir}`),
      'USAGE',
      /2 images \(refs: app, base\)/,
    );
    assert.equal(error.exitCode, 2);
    await assert.rejects(run('skopeo', ['inspect', `oci:${fx.ociApp.dir}`]));
  });

  it('is NOT_FOUND for an unknown REF, naming the refs it has', async () => {
    await rejectsWith(
      openSource(`oci:${fx.ociApp.dir}:nope`),
      'NOT_FOUND',
      /no image named nope.*its refs: app, base/,
    );
  });

  it('is NOT_FOUND for a layout folder that does not exist', async () => {
    await rejectsWith(openSource(`oci:${join(scratch, 'missing')}:app`), 'NOT_FOUND', /does not exist/);
  });

  it('is LAYOUT_INVALID without oci-layout, or with an unknown imageLayoutVersion', async () => {
    const dir = join(scratch, 'no-marker');
    await cp(fx.ociApp.dir, dir, { recursive: true });
    await rm(join(dir, 'oci-layout'));
    await rejectsWith(openSource(`oci:${dir}:app`), 'LAYOUT_INVALID', /no oci-layout/);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
    await rejectsWith(openSource(`oci:${dir}:app`), 'LAYOUT_INVALID', /imageLayoutVersion "2.0.0"/);
  });
});

describe('OciLayoutSource with a multi-platform index', () => {
  it('returns the index skopeo --raw prints and follows it per platform', async () => {
    const source = await openSource(fx.ociMulti.reference);
    const top = await source.getManifest();
    assert.equal(top.bytes.toString('utf8'), await skopeo('--raw', fx.ociMulti.reference));
    assert.equal(top.digest, fx.ociMulti.indexDigest);
    assert.equal(top.mediaType, 'application/vnd.oci.image.index.v1+json');
    for (const expected of fx.ociMulti.images) {
      const image = await resolveImage(source, expected.platform);
      assert.equal(image.stored.digest, expected.manifestDigest);
      assert.equal(image.config.architecture, expected.architecture);
      assert.equal(
        image.configBytes.toString('utf8'),
        await skopeo('--override-arch', expected.architecture, '--config', '--raw', fx.ociMulti.reference),
      );
    }
  });

  it('keeps the attestation entry out of platform choice', async () => {
    const source = await openSource(fx.ociMulti.reference);
    const index = parseManifest((await source.getManifest()).bytes);
    assert.equal(index.kind, 'index');
    if (index.kind === 'index') {
      assert.equal(index.manifests.length, 3);
      assert.equal(index.manifests[2]!.digest, fx.ociMulti.attestationDigest);
    }
    await assert.rejects(resolveImage(source, 'linux/s390x'), /no image for linux\/s390x.*/);
    // The attestation manifest itself is readable by digest.
    const attestation = await source.getManifest(fx.ociMulti.attestationDigest);
    assert.equal(attestation.digest, fx.ociMulti.attestationDigest);
  });

  it('opens without REF when the layout holds exactly one entry', async () => {
    const source = await openSource(`oci:${fx.ociMulti.dir}`);
    assert.equal((await source.getManifest()).digest, fx.ociMulti.indexDigest);
  });
});

describe('OciLayoutSource errors on blobs', () => {
  it('is NOT_FOUND for a missing blob, naming the digest and the layout', async () => {
    const dir = join(scratch, 'missing-blob');
    await cp(fx.ociApp.dir, dir, { recursive: true });
    const source = await openSource(`oci:${dir}:app`);
    const { manifest } = await resolveImage(source);
    const victim = manifest.layers[1]!;
    await rm(join(dir, 'blobs', 'sha256', victim.digest.slice(7)));
    const error = await rejectsWith(source.getBlob(victim), 'NOT_FOUND', new RegExp(victim.digest));
    assert.ok(error.message.includes(dir));
  });

  it('fails a corrupt blob with DIGEST_MISMATCH while streaming', async () => {
    const source = await openSource(fx.ociCorrupt.reference);
    const { manifest } = await resolveImage(source);
    const layer = manifest.layers.find((l) => l.digest === fx.ociCorrupt.corruptDigest)!;
    assert.ok(layer, 'the corrupt layer is in the manifest');
    await rejectsWith(streamDigest(await source.getBlob(layer)), 'DIGEST_MISMATCH', new RegExp(layer.digest));
    // Its neighbours are intact.
    const intact = manifest.layers.find((l) => l.digest !== fx.ociCorrupt.corruptDigest)!;
    assert.equal((await streamDigest(await source.getBlob(intact))).digest, intact.digest);
  });

  it('fails a blob whose size differs from its descriptor with SIZE_MISMATCH', async () => {
    const source = await openSource(fx.ociApp.reference);
    const { manifest } = await resolveImage(source);
    const layer = manifest.layers[0]!;
    await rejectsWith(
      streamDigest(await source.getBlob({ ...layer, size: layer.size + 1 })),
      'SIZE_MISMATCH',
      /ended after/,
    );
  });

  it('refuses a digest that would escape blobs/', async () => {
    const source = await openSource(fx.ociApp.reference);
    await assert.rejects(source.getBlob({ digest: 'sha256:../../index.json', size: 1 }), /invalid digest/);
  });
});
