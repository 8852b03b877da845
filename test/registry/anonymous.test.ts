import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MediaType } from '../../src/image/media-types.js';
import { parseReference } from '../../src/reference/parse.js';
import { RegistryClient } from '../../src/registry/client.js';
import { RegistrySource } from '../../src/sources/registry.js';
import { rejectsWith } from '../support/assert.js';
import {
  buildTinyImage,
  pushWithSkopeo,
  skopeoInspect,
  startRegistry,
  streamDigest,
  type TestRegistry,
} from '../support/registry.js';

interface RawManifest {
  mediaType?: string;
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
}

describe('registry without auth (plain HTTP on loopback)', () => {
  let registry: TestRegistry;
  let work: string;
  let info: Record<string, unknown>;
  let raw: RawManifest;
  let client: RegistryClient;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ballast-anon-'));
    const image = await buildTinyImage(join(work, 'layout'), {
      layers: [{ 'big.bin': randomBytes(2 * 1024 * 1024 + 123) }, { 'etc/hello.txt': 'hello\n' }],
    });
    const corrupt = await buildTinyImage(join(work, 'corrupt'), {
      layers: [{ 'data.bin': randomBytes(64 * 1024) }],
    });
    registry = await startRegistry({ auth: 'none' });
    await pushWithSkopeo(registry, image.ref, 'foo:one');
    await pushWithSkopeo(registry, image.ref, 'foo:two');
    await pushWithSkopeo(registry, image.ref, 'paged:base');
    await pushWithSkopeo(registry, corrupt.ref, 'corrupt:blob');
    await pushWithSkopeo(registry, corrupt.ref, 'corrupt-manifest:latest');
    info = await skopeoInspect(`docker://${registry.host}/foo:one`);
    raw = (await skopeoInspect(`docker://${registry.host}/foo:one`, ['--raw'])) as unknown as RawManifest;
    client = new RegistryClient(registry.host, { retry: { baseDelayMs: 10 } });
  });

  after(async () => {
    client?.close();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('the manifest by tag is what skopeo sees, with its digest and name', async () => {
    const source = await RegistrySource.open(parseReference(`${registry.host}/foo:one`), {});
    try {
      assert.equal(source.name, info.Name);
      assert.equal(source.name, `${registry.host}/foo`);
      const manifest = await source.getManifest();
      assert.equal(manifest.digest, info.Digest);
      assert.equal(manifest.mediaType, MediaType.ociManifest);
      assert.deepEqual(JSON.parse(manifest.bytes.toString('utf8')), raw);
    } finally {
      await source.close();
    }
  });

  test('the manifest by digest, from a digest reference and from getManifest(digest)', async () => {
    const digest = String(info.Digest);
    const source = await RegistrySource.open(parseReference(`${registry.host}/foo@${digest}`), {});
    try {
      const top = await source.getManifest();
      assert.equal(top.digest, digest);
      const again = await source.getManifest(digest);
      assert.equal(again.bytes.toString('hex'), top.bytes.toString('hex'));
    } finally {
      await source.close();
    }
  });

  test('layers and config stream with the digests and sizes skopeo reports, with progress', async () => {
    assert.deepEqual(
      raw.layers.map((l) => l.digest),
      info.Layers,
    );
    const big = raw.layers[0];
    assert.ok(big !== undefined && big.size > 2 * 1024 * 1024, 'the first layer holds the random file');
    for (const descriptor of [...raw.layers, raw.config]) {
      const seen: number[] = [];
      const stream = await client.getBlob('foo', descriptor, {
        onProgress: (p) => {
          assert.equal(p.total, descriptor.size);
          seen.push(p.bytes);
        },
      });
      const got = await streamDigest(stream);
      assert.equal(got.digest, descriptor.digest);
      assert.equal(got.bytes, descriptor.size);
      assert.equal(seen.at(-1), descriptor.size);
      assert.ok(
        seen.every((b, i) => i === 0 || b > (seen[i - 1] ?? 0)),
        'progress only grows',
      );
    }
  });

  test('HEAD reports the digest and size of a manifest, undefined for a missing tag', async () => {
    const head = await client.headManifest('foo', 'two');
    const manifest = await client.getManifest('foo', 'two');
    assert.deepEqual(head, {
      digest: info.Digest,
      mediaType: MediaType.ociManifest,
      size: manifest.bytes.length,
    });
    assert.equal(await client.headManifest('foo', 'missing'), undefined);
  });

  test('a missing tag is NOT_FOUND naming the full reference and the tag', async () => {
    const source = await RegistrySource.open(parseReference(`${registry.host}/foo:nope`), {});
    const error = await rejectsWith(source.getManifest(), 'NOT_FOUND');
    assert.equal(error.exitCode, 1);
    assert.match(error.message, new RegExp(`^manifest unknown: ${registry.host}/foo:nope `));
    assert.match(error.message, /tag "nope" does not exist/);
    await source.close();
  });

  test('a missing repository is NOT_FOUND saying it is the repository', async () => {
    const error = await rejectsWith(client.getManifest('nothere', 'latest'), 'NOT_FOUND');
    assert.match(error.message, new RegExp(`^repository unknown: ${registry.host}/nothere `));
    await rejectsWith(client.listTags('nothere'), 'NOT_FOUND');
  });

  test('a missing blob is NOT_FOUND', async () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    const error = await rejectsWith(client.getBlob('foo', { digest, size: 10 }), 'NOT_FOUND');
    assert.match(error.message, new RegExp(digest));
  });

  test('tags are listed across pages (Link rel="next")', async () => {
    const manifest = await client.getManifest('foo', 'one');
    const expected = ['base'];
    for (let i = 0; i < 30; i++) {
      const tag = `t${String(i).padStart(2, '0')}`;
      expected.push(tag);
      const response = await client.request({
        method: 'PUT',
        path: `/v2/paged/manifests/${tag}`,
        headers: { 'content-type': manifest.mediaType },
        body: manifest.bytes,
        scopes: ['repository:paged:pull,push'],
      });
      response.body.resume();
      assert.equal(response.status, 201);
    }
    const paged = new RegistryClient(registry.host, { tagsPageSize: 7 });
    try {
      const tags = await paged.listTags('paged');
      assert.equal(tags.length, 31);
      assert.deepEqual([...tags].sort(), expected.sort());
      assert.deepEqual((await paged.listTags('foo')).sort(), ['one', 'two']);
    } finally {
      paged.close();
    }
  });

  test('a blob whose stored bytes do not match its digest fails with DIGEST_MISMATCH', async () => {
    const rawCorrupt = (await skopeoInspect(`docker://${registry.host}/corrupt:blob`, [
      '--raw',
    ])) as unknown as RawManifest;
    const layer = rawCorrupt.layers[0];
    assert.ok(layer !== undefined);
    const file = registry.blobPath(layer.digest);
    const bytes = await readFile(file);
    assert.equal(bytes.length, layer.size);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    await writeFile(file, bytes);
    const stream = await client.getBlob('corrupt', layer);
    const error = await rejectsWith(streamDigest(stream), 'DIGEST_MISMATCH');
    assert.match(error.message, new RegExp(layer.digest));
  });

  test('a manifest whose stored bytes do not match its digest fails with DIGEST_MISMATCH', async () => {
    const head = await client.headManifest('corrupt-manifest', 'latest');
    assert.ok(head?.digest !== undefined);
    const file = registry.blobPath(head.digest);
    const bytes = await readFile(file);
    // Still valid JSON: only the digest can tell.
    await writeFile(file, Buffer.concat([bytes, Buffer.from('\n')]));
    const changed = await readFile(file);
    assert.notEqual(changed.toString('hex'), bytes.toString('hex'));
    await rejectsWith(client.getManifest('corrupt-manifest', 'latest'), 'DIGEST_MISMATCH');
    await rejectsWith(client.getManifest('corrupt-manifest', head.digest), 'DIGEST_MISMATCH');
  });
});
