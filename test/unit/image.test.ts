import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { BallastError } from '../../src/errors.js';
import { sha256, VerifyingStream } from '../../src/image/digest.js';
import { parseManifest } from '../../src/image/manifest.js';
import { MediaType } from '../../src/image/media-types.js';
import { selectPlatform } from '../../src/image/platform.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;

function code(fn: () => unknown, expected: string, pattern?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(BallastError.is(error), String(error));
    assert.equal(error.code, expected);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

describe('manifests', () => {
  test('an OCI manifest without mediaType is recognised by its shape', () => {
    const doc = {
      schemaVersion: 2,
      config: { mediaType: MediaType.ociConfig, digest: D('a'), size: 10 },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: D('b'), size: 20 }],
    };
    const m = parseManifest(Buffer.from(JSON.stringify(doc)));
    assert.equal(m.kind, 'manifest');
    assert.equal(m.mediaType, MediaType.ociManifest);
    assert.equal(m.kind === 'manifest' && m.layers[0]?.size, 20);
  });
  test('a manifest list', () => {
    const doc = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifestList,
      manifests: [
        {
          mediaType: MediaType.dockerManifest,
          digest: D('c'),
          size: 5,
          platform: { os: 'linux', architecture: 'amd64' },
        },
      ],
    };
    const m = parseManifest(Buffer.from(JSON.stringify(doc)));
    assert.equal(m.kind === 'index' && m.manifests[0]?.platform?.architecture, 'amd64');
  });
  test('schema 1 lists layers bottom first', () => {
    const doc = {
      schemaVersion: 1,
      name: 'x',
      tag: 'y',
      architecture: 'amd64',
      fsLayers: [{ blobSum: D('1') }, { blobSum: D('2') }],
      history: [{ v1Compatibility: '{"id":"top"}' }, { v1Compatibility: '{"id":"bottom"}' }],
    };
    const m = parseManifest(Buffer.from(JSON.stringify(doc)));
    assert.equal(m.kind, 'schema1');
    if (m.kind !== 'schema1') return;
    assert.deepEqual(m.layers, [D('2'), D('1')]);
    assert.equal(m.history[0]?.id, 'bottom');
  });
  test('not JSON', () => code(() => parseManifest(Buffer.from('<html>')), 'MANIFEST_INVALID', /not JSON/));
  test('unknown media type', () =>
    code(
      () => parseManifest(Buffer.from('{"schemaVersion":2,"mediaType":"text/plain"}')),
      'MEDIA_TYPE_UNSUPPORTED',
      /"text\/plain"/,
    ));
  test('bad digest in a layer', () =>
    code(
      () =>
        parseManifest(
          Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: MediaType.ociManifest,
              config: { mediaType: MediaType.ociConfig, digest: D('a'), size: 1 },
              layers: [{ mediaType: MediaType.ociLayer, digest: 'sha256:xyz', size: 1 }],
            }),
          ),
        ),
      'MANIFEST_INVALID',
      /layer 0/,
    ));
});

describe('platform selection', () => {
  const entry = (c: string, platform: Record<string, string>, annotations?: Record<string, string>) => ({
    mediaType: MediaType.ociManifest,
    digest: D(c),
    size: 1,
    platform: platform as { os: string; architecture: string },
    ...(annotations ? { annotations } : {}),
  });
  const entries = [
    entry('a', { os: 'linux', architecture: 'amd64' }),
    entry('b', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
    entry('c', { os: 'linux', architecture: 'arm', variant: 'v6' }),
    entry('d', { os: 'linux', architecture: 'arm', variant: 'v7' }),
    entry(
      'e',
      { os: 'unknown', architecture: 'unknown' },
      { 'vnd.docker.reference.type': 'attestation-manifest' },
    ),
  ];
  test('exact and normalised matches', () => {
    assert.equal(
      selectPlatform(entries, { os: 'linux', architecture: 'amd64', variant: undefined }).digest,
      D('a'),
    );
    assert.equal(
      selectPlatform(entries, { os: 'linux', architecture: 'arm64', variant: undefined }).digest,
      D('b'),
    );
    assert.equal(selectPlatform(entries, { os: 'linux', architecture: 'arm', variant: 'v6' }).digest, D('c'));
    assert.equal(
      selectPlatform(entries, { os: 'linux', architecture: 'arm', variant: undefined }).digest,
      D('d'),
    );
  });
  test('attestations are never chosen', () =>
    code(
      () => selectPlatform(entries, { os: 'unknown', architecture: 'unknown', variant: undefined }),
      'PLATFORM_NOT_FOUND',
      /no image for unknown\/unknown/,
    ));
  test('a missing platform lists those available', () => {
    try {
      selectPlatform(entries, { os: 'linux', architecture: 's390x', variant: undefined });
      assert.fail('expected an error');
    } catch (error) {
      assert.ok(BallastError.is(error));
      assert.equal(
        error.hint,
        'available: linux/amd64, linux/arm64/v8, linux/arm/v6, linux/arm/v7; choose one with --platform',
      );
    }
  });
});

describe('verifying streams', () => {
  const bytes = Buffer.from('hello, layers');
  const drain = (s: VerifyingStream, data: Buffer) =>
    pipeline(Readable.from([data]), s, async (source) => {
      for await (const _ of source);
    });
  test('passes matching bytes', async () => {
    const s = new VerifyingStream({ digest: sha256(bytes), size: bytes.length }, 'blob');
    await drain(s, bytes);
    assert.equal(s.bytes, bytes.length);
  });
  test('fails on a digest mismatch', async () => {
    const s = new VerifyingStream({ digest: sha256('other'), size: bytes.length }, 'blob x');
    await assert.rejects(drain(s, bytes), (e: unknown) => BallastError.is(e) && e.code === 'DIGEST_MISMATCH');
  });
  test('fails on a short or long stream', async () => {
    await assert.rejects(
      drain(new VerifyingStream({ digest: sha256(bytes), size: bytes.length + 1 }, 'b'), bytes),
      (e: unknown) => BallastError.is(e) && e.code === 'SIZE_MISMATCH' && /ended after/.test(e.message),
    );
    await assert.rejects(
      drain(new VerifyingStream({ digest: sha256(bytes), size: 3 }, 'b'), bytes),
      (e: unknown) => BallastError.is(e) && e.code === 'SIZE_MISMATCH' && /larger/.test(e.message),
    );
  });
});
