/**
 * The commands on every transport, compared with the real peers: skopeo for inspect, and docker's own
 * `docker history` / `docker image inspect` for the sizes of images the daemon built.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ballast, oneLineError } from '../support/cli.js';
import { type DockerDaemon, startDocker } from '../support/docker.js';
import {
  type DockerFixtures,
  ensureDaemonImages,
  type OciFixtures,
  ociFixtures,
} from '../support/fixtures.js';
import { run, skopeoInspect, startRegistry, type TestRegistry } from '../support/registry.js';

let oci: OciFixtures;
let docker: DockerFixtures;
let daemon: DockerDaemon;
let registry: TestRegistry;

interface DockerHistoryRow {
  CreatedBy: string;
  Size: string;
  Comment: string;
}

interface HistoryRow {
  createdBy: string;
  sizeBytes: number;
  compressedSizeBytes: number;
  emptyLayer: boolean;
  comment: string;
}

async function dockerHistory(name: string): Promise<DockerHistoryRow[]> {
  const out = await daemon.docker(['history', '--no-trunc', '--human=false', '--format', '{{json .}}', name]);
  return out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as DockerHistoryRow);
}

async function history(reference: string, env: NodeJS.ProcessEnv = {}): Promise<HistoryRow[]> {
  const result = await ballast(['history', '--format', 'json', reference], { env });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as HistoryRow[];
}

function sameAsDocker(rows: HistoryRow[], expected: DockerHistoryRow[]): void {
  assert.deepEqual(
    rows.map((r) => [r.createdBy, r.sizeBytes]),
    expected.map((r) => [r.CreatedBy, Number(r.Size)]),
  );
}

before(async () => {
  oci = await ociFixtures();
  daemon = await startDocker();
  docker = await ensureDaemonImages(daemon);
  registry = await startRegistry();
});

after(async () => {
  await registry?.stop();
  await daemon?.release();
});

describe('inspect on every transport equals skopeo inspect', () => {
  const fields = [
    'Name',
    'Digest',
    'RepoTags',
    'Created',
    'DockerVersion',
    'Labels',
    'Architecture',
    'Os',
    'Layers',
    'Env',
  ];
  const compare = async (reference: string, skopeoArgs: string[] = [], env: NodeJS.ProcessEnv = {}) => {
    const expected = await skopeoInspect(reference, skopeoArgs);
    const result = await ballast(['inspect', reference], { env });
    assert.equal(result.code, 0, result.stderr);
    const actual = JSON.parse(result.stdout) as Record<string, unknown>;
    for (const field of fields) assert.deepEqual(actual[field], expected[field], `${reference} ${field}`);
    assert.deepEqual(
      Object.keys(actual).filter((k) => k !== 'LayersData'),
      Object.keys(expected),
    );
    const raw = await ballast(['inspect', '--raw', reference], { env });
    const skopeoRaw = await run('skopeo', ['inspect', '--raw', ...skopeoArgs, reference]);
    assert.equal(raw.stdout, skopeoRaw.stdout, `${reference} --raw`);
  };
  test('oci: layout', () => compare(oci.ociApp.reference));
  test('docker-archive: legacy docker save', () => compare(docker.dockerArchive.reference));
  test('docker-daemon:', () =>
    compare(`docker-daemon:${docker.images.app.name}`, ['--daemon-host', daemon.host], {
      DOCKER_HOST: daemon.host,
    }));
});

describe('history sizes are the ones docker shows, from every source', () => {
  test('docker-daemon: (the daemon knows them)', async () => {
    const expected = await dockerHistory(docker.images.app.name);
    sameAsDocker(
      await history(`docker-daemon:${docker.images.app.name}`, { DOCKER_HOST: daemon.host }),
      expected,
    );
  });
  test('docker-archive: (measured by seeking over the layer tars)', async () => {
    sameAsDocker(await history(docker.dockerArchive.reference), await dockerHistory(docker.images.app.name));
  });
  test('a registry the daemon pushed to (measured by streaming gzip layers)', async () => {
    const target = `${registry.host}/pushed/app:1`;
    await daemon.docker(['tag', docker.images.app.name, target]);
    await daemon.docker(['push', target]);
    const rows = await history(target);
    sameAsDocker(rows, await dockerHistory(docker.images.app.name));
    const manifest = await skopeoInspect(`docker://${target}`, ['--raw', '--tls-verify=false']);
    assert.deepEqual(
      rows.filter((r) => !r.emptyLayer).map((r) => r.compressedSizeBytes),
      (manifest.layers as { size: number }[]).map((l) => l.size).reverse(),
    );
  });
  test('sizes --exact equals docker image inspect Size', async () => {
    const size = Number(
      (await daemon.docker(['image', 'inspect', '--format', '{{.Size}}', docker.images.app.name])).trim(),
    );
    const result = await ballast(['sizes', '--exact', '--format', 'json', docker.dockerArchive.reference]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((JSON.parse(result.stdout) as { sizeBytes: number }[])[0]?.sizeBytes, size);
  });
});

describe('multi-platform images', () => {
  let reference: string;
  before(async () => {
    reference = `${registry.host}/multi:1`;
    await run('skopeo', [
      'copy',
      '--all',
      '--quiet',
      '--dest-tls-verify=false',
      oci.ociMulti.reference,
      `docker://${reference}`,
    ]);
  });
  test('--platform chooses in the index; Digest stays the index digest', async () => {
    for (const image of oci.ociMulti.images) {
      const [os, architecture] = image.platform.split('/');
      const expected = await skopeoInspect(`docker://${reference}`, [
        '--override-os',
        os!,
        '--override-arch',
        architecture!,
      ]);
      const result = await ballast(['inspect', '--platform', image.platform, reference]);
      assert.equal(result.code, 0, result.stderr);
      const actual = JSON.parse(result.stdout) as Record<string, unknown>;
      assert.equal(actual.Architecture, image.architecture);
      assert.equal(actual.Digest, oci.ociMulti.indexDigest);
      assert.deepEqual(actual.Layers, expected.Layers);
    }
  });
  test('the default is this host (linux/amd64 here)', async () => {
    const result = await ballast(['inspect', reference]);
    assert.equal(JSON.parse(result.stdout).Architecture, 'amd64');
  });
  test('a platform the index lacks lists those it has', async () => {
    const result = await ballast(['history', '--platform', 'linux/s390x', reference]);
    assert.equal(result.code, 1);
    const line = oneLineError(result);
    assert.match(line, /no image for linux\/s390x/);
    assert.match(line, /linux\/amd64, linux\/arm64/);
    assert.doesNotMatch(line, /unknown\/unknown/);
  });
  test('a malformed platform is a usage error', async () => {
    const result = await ballast(['inspect', '--platform', 'amd64', reference]);
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /invalid platform "amd64"/);
  });
});

describe('bad local input', () => {
  test('a corrupt blob in an OCI layout', async () => {
    const result = await ballast(['history', oci.ociCorrupt.reference]);
    assert.equal(result.code, 1);
    assert.match(oneLineError(result), /does not match its digest|invalid|corrupt/i);
  });
  test('a truncated archive', async () => {
    const result = await ballast(['inspect', `docker-archive:${oci.truncatedArchive}`]);
    assert.equal(result.code, 1);
    assert.match(
      oneLineError(result),
      new RegExp(oci.truncatedArchive.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
    );
  });
  test('a file that is not a tar', async () => {
    const result = await ballast(['inspect', `docker-archive:${oci.notTar}`]);
    assert.equal(result.code, 1);
    oneLineError(result);
  });
  test('an OCI ref that is not there', async () => {
    const result = await ballast(['inspect', `oci:${oci.ociApp.dir}:nope`]);
    assert.equal(result.code, 1);
    assert.match(oneLineError(result), /nope/);
  });
});
