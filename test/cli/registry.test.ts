/**
 * The four foundation commands against the real registry server, compared with skopeo on the same
 * images, and the failures a user meets, each one clear line with the right exit code.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ballast, oneLineError } from '../support/cli.js';
import {
  buildTinyImage,
  pushWithSkopeo,
  run,
  skopeoInspect,
  startRegistry,
  type TestRegistry,
  type TinyImage,
} from '../support/registry.js';

let registry: TestRegistry;
let image: TinyImage;
let work: string;

/** The file bytes of a gzip layer as GNU tar lists them: the independent oracle for history sizes. */
async function tarFileBytes(blob: string): Promise<number> {
  const { stdout } = await run('tar', ['-tzvf', blob]);
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('-'))
    .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[2]), 0);
}

before(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'ballast-cli-'));
  image = await buildTinyImage(join(work, 'layout'), {
    tag: '1.0',
    layers: [
      { 'etc/motd': 'ballast test image\n', 'usr/share/doc/readme': 'x'.repeat(5000) },
      { 'app/data.bin': Buffer.alloc(300_000, 7), 'app/run.sh': '#!/bin/sh\necho hi\n' },
    ],
  });
  for (const tag of ['1.0', 'latest', '2.0-rc1'])
    await pushWithSkopeo(registry, image.ref, `team/app:${tag}`);
});

after(async () => {
  await registry?.stop();
});

describe('inspect', () => {
  test('prints what skopeo inspect prints, field by field', async () => {
    const ref = `docker://${registry.host}/team/app:1.0`;
    const expected = await skopeoInspect(ref);
    const result = await ballast(['inspect', ref]);
    assert.equal(result.code, 0, result.stderr);
    const actual = JSON.parse(result.stdout) as Record<string, unknown>;
    for (const field of [
      'Name',
      'Digest',
      'Created',
      'DockerVersion',
      'Labels',
      'Architecture',
      'Os',
      'Layers',
      'Env',
    ]) {
      assert.deepEqual(actual[field], expected[field], field);
    }
    assert.deepEqual([...(actual.RepoTags as string[])].sort(), [...(expected.RepoTags as string[])].sort());
    // skopeo 1.9 predates LayersData (newer skopeo prints it after Layers): check it against the manifest.
    assert.deepEqual(
      Object.keys(actual).filter((k) => k !== 'LayersData'),
      Object.keys(expected),
    );
    const manifest = await skopeoInspect(ref, ['--raw']);
    assert.deepEqual(
      actual.LayersData,
      (manifest.layers as { mediaType: string; digest: string; size: number }[]).map((l) => ({
        MIMEType: l.mediaType,
        Digest: l.digest,
        Size: l.size,
        Annotations: null,
      })),
    );
  });

  test('--raw is the manifest byte for byte, --config --raw the config', async () => {
    const ref = `${registry.host}/team/app:1.0`;
    const skopeoRaw = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]);
    const raw = await ballast(['inspect', '--raw', ref]);
    assert.equal(raw.code, 0, raw.stderr);
    assert.equal(raw.stdout, skopeoRaw.stdout);
    const skopeoConfig = await run('skopeo', [
      'inspect',
      '--tls-verify=false',
      '--config',
      '--raw',
      `docker://${ref}`,
    ]);
    const config = await ballast(['inspect', '--config', '--raw', ref]);
    assert.equal(config.stdout, skopeoConfig.stdout);
    const pretty = await ballast(['inspect', '--config', ref]);
    assert.deepEqual(JSON.parse(pretty.stdout), JSON.parse(skopeoConfig.stdout));
  });

  test('--no-tags leaves RepoTags empty', async () => {
    const result = await ballast(['inspect', '--no-tags', `${registry.host}/team/app:latest`]);
    assert.deepEqual(JSON.parse(result.stdout).RepoTags, []);
  });
});

describe('history', () => {
  test('rows carry the exact uncompressed and compressed size of each layer', async () => {
    const result = await ballast(['history', '--format', 'json', `${registry.host}/team/app:1.0`]);
    assert.equal(result.code, 0, result.stderr);
    const rows = JSON.parse(result.stdout) as {
      sizeBytes: number;
      compressedSizeBytes: number;
      digest: string | null;
      emptyLayer: boolean;
    }[];
    const manifest = await skopeoInspect(`docker://${registry.host}/team/app:1.0`, ['--raw']);
    const layers = manifest.layers as { digest: string; size: number }[];
    const withLayers = rows.filter((r) => !r.emptyLayer).reverse();
    assert.deepEqual(
      withLayers.map((r) => [r.digest, r.compressedSizeBytes]),
      layers.map((l) => [l.digest, l.size]),
    );
    for (const row of withLayers) {
      const blob = join(image.layout, 'blobs', 'sha256', row.digest!.slice(7));
      assert.equal(row.sizeBytes, await tarFileBytes(blob), row.digest!);
    }
    assert.ok(withLayers.some((r) => r.sizeBytes >= 300_000));
  });

  test('the table is docker-like, newest first', async () => {
    const result = await ballast(['history', `${registry.host}/team/app:1.0`]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^LAYER\s+CREATED\s+CREATED BY\s+SIZE\s+COMPRESSED\s+COMMENT$/);
    assert.match(result.stdout, /300kB/);
  });
});

describe('sizes', () => {
  test('compressed from the manifest, exact size from the layers, smallest first', async () => {
    const small = await buildTinyImage(join(work, 'small'), { tag: 's', layers: [{ a: 'tiny' }] });
    await pushWithSkopeo(registry, small.ref, 'small:1');
    const big = `${registry.host}/team/app:1.0`;
    const tiny = `${registry.host}/small:1`;
    const result = await ballast(['sizes', '--exact', '--format', 'json', big, tiny]);
    assert.equal(result.code, 0, result.stderr);
    const rows = JSON.parse(result.stdout) as {
      reference: string;
      compressedBytes: number;
      sizeBytes: number;
      layers: number;
      digest: string;
    }[];
    assert.deepEqual(
      rows.map((r) => r.reference),
      [tiny, big],
    );
    const history = JSON.parse((await ballast(['history', '--format', 'json', big])).stdout) as {
      sizeBytes: number;
    }[];
    const inspect = await skopeoInspect(`docker://${big}`);
    const bigRow = rows[1]!;
    assert.equal(bigRow.digest, inspect.Digest);
    assert.equal(bigRow.layers, (inspect.Layers as string[]).length);
    const manifest = await skopeoInspect(`docker://${big}`, ['--raw']);
    assert.equal(
      bigRow.compressedBytes,
      (manifest.layers as { size: number }[]).reduce((s, l) => s + l.size, 0),
    );
    assert.equal(
      bigRow.sizeBytes,
      history.reduce((s, r) => s + r.sizeBytes, 0),
    );
    const plain = JSON.parse((await ballast(['sizes', '--format', 'json', big])).stdout) as {
      sizeBytes: null;
    }[];
    assert.equal(plain[0]?.sizeBytes, null);
  });

  test('one missing image fails the run but the others are listed', async () => {
    const result = await ballast([
      'sizes',
      `${registry.host}/team/app:1.0`,
      `${registry.host}/team/app:nope`,
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /team\/app:1\.0/);
    assert.match(oneLineError(result), /nope/);
  });
});

describe('tags', () => {
  test('lists every tag as skopeo list-tags does', async () => {
    const expected = JSON.parse(
      (await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${registry.host}/team/app`])).stdout,
    );
    const result = await ballast(['tags', '--format', 'json', `${registry.host}/team/app`]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), expected);
    const table = await ballast(['tags', `${registry.host}/team/app`]);
    assert.deepEqual(table.stdout.trimEnd().split('\n').sort(), ['1.0', '2.0-rc1', 'latest']);
  });
  test('a tagged name is refused', async () => {
    const result = await ballast(['tags', `${registry.host}/team/app:1.0`]);
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /names an image, not a repository/);
  });
});

describe('bad input: one clear line, the right exit code', () => {
  test('a tag that does not exist', async () => {
    const result = await ballast(['inspect', `${registry.host}/team/app:missing`]);
    assert.equal(result.code, 1);
    assert.match(oneLineError(result), /team\/app:missing/);
  });
  test('a repository that does not exist', async () => {
    const result = await ballast(['inspect', `${registry.host}/nobody/here:1`]);
    assert.equal(result.code, 1);
    assert.match(oneLineError(result), /nobody\/here/);
  });
  test('a malformed reference says which part is wrong', async () => {
    const result = await ballast(['inspect', `${registry.host}/Team/app`]);
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /lowercase \("Team"\)/);
  });
  test('an unknown flag', async () => {
    const result = await ballast(['history', '--frobnicate', 'x']);
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /frobnicate/);
  });
  test('a missing argument and a bad format', async () => {
    assert.equal((await ballast(['inspect'])).code, 2);
    const result = await ballast(['history', '--format', 'xml', 'x']);
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /unknown format "xml"/);
  });
  test('a blob whose bytes do not match its digest', async () => {
    const corrupt = await buildTinyImage(join(work, 'corrupt'), {
      tag: 'c',
      layers: [{ f: 'y'.repeat(1000) }],
    });
    await pushWithSkopeo(registry, corrupt.ref, 'corrupt:1');
    const inspect = await skopeoInspect(`docker://${registry.host}/corrupt:1`);
    const layer = (inspect.Layers as string[])[0]!;
    const path = registry.blobPath(layer);
    const bytes = await readFile(path);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
    const result = await ballast(['history', `${registry.host}/corrupt:1`]);
    assert.equal(result.code, 1);
    assert.match(oneLineError(result), /does not match its digest|invalid|corrupt/i);
  });
  test('no daemon running for docker-daemon:', async () => {
    const result = await ballast(['inspect', 'docker-daemon:app:1'], {
      env: { DOCKER_HOST: `unix://${work}/none.sock` },
    });
    assert.equal(result.code, 1);
    assert.match(oneLineError(result), /Docker daemon/);
  });
  test('an unknown command', async () => {
    const result = await ballast(['explode']);
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /unknown command "explode"/);
  });
});
