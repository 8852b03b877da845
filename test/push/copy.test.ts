import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { copyImage } from '../../src/copy/copy.js';
import { OciLayoutDestination } from '../../src/copy/oci-layout-destination.js';
import { MediaType } from '../../src/image/media-types.js';
import { parseReference } from '../../src/reference/parse.js';
import { openSource } from '../../src/sources/open.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { type OciFixtures, ociFixtures } from '../support/fixtures.js';
import {
  buildTinyImage,
  pushWithSkopeo,
  run,
  startRegistry,
  type TestRegistry,
} from '../support/registry.js';
import { copyTo, peerView } from './helpers.js';

let work: string;
let oci: OciFixtures;
let a: TestRegistry;
let b: TestRegistry;
let proxy: FaultProxy;
let bigImage: string;

const isUpload = (r: { method: string; path: string }) =>
  (r.method === 'PUT' || r.method === 'PATCH') && r.path.includes('/blobs/uploads/');

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ballast-push-'));
  oci = await ociFixtures();
  [a, b] = await Promise.all([startRegistry(), startRegistry()]);
  await pushWithSkopeo(a, oci.ociApp.reference, 'src/app:1');
  // skopeo copies one platform of an index unless told --all.
  await run('skopeo', [
    'copy',
    '--all',
    '--insecure-policy',
    '--quiet',
    '--dest-tls-verify=false',
    oci.ociMulti.reference,
    `docker://${a.host}/src/multi:1`,
  ]);
  const big = await buildTinyImage(join(work, 'big'), {
    layers: [{ 'big.bin': randomBytes(2 * 1024 * 1024) }],
  });
  bigImage = big.ref;
  proxy = await startFaultProxy(b.host);
});

after(async () => {
  await proxy?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe('registry to registry', () => {
  test('keeps the digest and the manifest bytes; a second copy sends nothing', async () => {
    const from = `docker://${a.host}/src/app:1`;
    const to = `docker://${b.host}/dst/app:1`;
    const first = await copyTo(from, to);
    const source = await peerView(from);
    const copied = await peerView(to);
    assert.equal(copied.digest, source.digest);
    assert.equal(first.result.digest, source.digest);
    assert.deepEqual(copied.raw, source.raw);
    assert.equal(first.result.blobsCopied, 4);
    assert.equal(first.result.converted, false);

    const again = await copyTo(from, to);
    assert.equal(again.result.bytesCopied, 0);
    assert.equal(again.result.blobsCopied, 0);
    assert.equal(again.result.blobsSkipped, 4);
    assert.equal(again.result.digest, source.digest);
  });

  test('copied back into an OCI layout it validates with oci-image-tool', async () => {
    const from = `docker://${a.host}/src/app:1`;
    const to = `docker://${b.host}/dst/roundtrip:1`;
    await copyTo(from, to);
    const dir = join(work, 'back');
    const source = await openSource(to);
    const destination = await OciLayoutDestination.open(parseReference(`oci:${dir}:app`));
    try {
      const result = await copyImage(source, destination);
      assert.equal(result.digest, (await peerView(from)).digest);
    } finally {
      await destination.close();
      await source.close();
    }
    await run('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=app', dir]);
  });

  test('within one registry blobs are mounted from the source repository: no blob is uploaded', async () => {
    await copyTo(`docker://${a.host}/src/app:1`, `docker://${proxy.host}/first/app:1`);
    proxy.requests.length = 0;
    const run1 = await copyTo(`docker://${proxy.host}/first/app:1`, `docker://${proxy.host}/second/app:1`);
    assert.equal(run1.result.blobsMounted, 4);
    assert.equal(run1.mounted, 4);
    assert.equal(run1.result.bytesCopied, 0);
    assert.deepEqual(proxy.requests.filter(isUpload), []);
    const mounts = proxy.requests.filter((r) => r.method === 'POST' && r.path.includes('mount='));
    assert.equal(mounts.length, 4);
    assert.ok(mounts.every((r) => r.status === 201 && r.path.includes('from=first%2Fapp')));
    assert.equal((await peerView(`docker://${b.host}/second/app:1`)).digest, run1.result.digest);
  });

  test('a multi-platform index is copied whole, children by digest', async () => {
    const from = `docker://${a.host}/src/multi:1`;
    const to = `docker://${b.host}/dst/multi:1`;
    const { result } = await copyTo(from, to);
    const source = await peerView(from);
    assert.equal(result.digest, source.digest);
    const index = JSON.parse(source.raw.toString('utf8')) as {
      mediaType?: string;
      manifests: { digest: string }[];
    };
    assert.ok(index.manifests.length >= 2);
    assert.equal(result.mediaType, index.mediaType ?? MediaType.ociIndex);
    assert.deepEqual((await peerView(to)).raw, source.raw);
    for (const entry of index.manifests) {
      const child = await run('skopeo', [
        'inspect',
        '--tls-verify=false',
        '--raw',
        `docker://${b.host}/dst/multi@${entry.digest}`,
      ]);
      assert.ok(child.stdout.length > 0);
    }
    assert.equal(result.manifestsWritten, index.manifests.length + 1);
  });

  test('a chunked upload (PATCH chunks, then PUT) keeps the digest', async () => {
    proxy.requests.length = 0;
    const { result } = await copyTo(bigImage, `docker://${proxy.host}/chunked/app:1`, {
      destination: { chunkThreshold: 1024 * 1024, chunkSize: 256 * 1024 },
    });
    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    assert.ok(patches.length >= 8, `${patches.length} PATCH requests`);
    assert.ok(patches.every((r) => r.status === 202));
    assert.equal((await peerView(`docker://${b.host}/chunked/app:1`)).digest, result.digest);
    assert.equal(result.digest, (await peerView(bigImage)).digest);
  });

  test('a registry asking for chunks (OCI-Chunk-Min-Length) gets them', async () => {
    proxy.requests.length = 0;
    proxy.addFault({
      kind: 'add-headers',
      headers: { 'oci-chunk-min-length': String(512 * 1024) },
      match: (r) => r.method === 'POST',
      times: 100,
    });
    try {
      const { result } = await copyTo(bigImage, `docker://${proxy.host}/asked/app:1`, {
        destination: { chunkSize: 64 * 1024 },
      });
      const patches = proxy.requests.filter((r) => r.method === 'PATCH');
      // 2 MiB in chunks of at least 512 KiB: 4 or 5 of them for the big layer, one per small blob.
      assert.ok(patches.length >= 5 && patches.length <= 8, `${patches.length} PATCH requests`);
      assert.equal((await peerView(`docker://${b.host}/asked/app:1`)).digest, result.digest);
    } finally {
      proxy.clearFaults();
    }
  });
});
