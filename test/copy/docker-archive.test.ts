import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CopyEvent, copyImage } from '../../src/copy/copy.js';
import {
  DockerArchiveDestination,
  familiarName,
  tarHeader,
} from '../../src/copy/docker-archive-destination.js';
import { BallastError } from '../../src/errors.js';
import { parseDockerName, parseReference } from '../../src/reference/parse.js';
import { openSource } from '../../src/sources/open.js';
import { type DockerDaemon, startDocker } from '../support/docker.js';
import {
  type DockerFixtures,
  dockerFixtures,
  type OciFixtures,
  ociFixtures,
  run,
} from '../support/fixtures.js';

let work: string;
let oci: OciFixtures;
let dockerImages: DockerFixtures;
let daemon: DockerDaemon;
const loaded: string[] = [];

async function copyToArchive(from: string, to: string, platform?: string) {
  const source = await openSource(from);
  const destination = await DockerArchiveDestination.open(parseReference(to));
  const events: CopyEvent[] = [];
  try {
    const options = platform === undefined ? {} : { platform };
    const result = await copyImage(source, destination, { ...options, onEvent: (e) => events.push(e) });
    return { result, events };
  } finally {
    await destination.close();
    await source.close();
  }
}

async function configDigestOf(reference: string): Promise<string> {
  const source = await openSource(reference);
  try {
    const top = await source.getManifest();
    return (JSON.parse(top.bytes.toString()) as { config: { digest: string } }).config.digest;
  } finally {
    await source.close();
  }
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ballast-copy-archive-'));
  oci = await ociFixtures();
  dockerImages = await dockerFixtures();
  daemon = await startDocker();
});

after(async () => {
  for (const name of loaded) await daemon.docker(['rmi', '-f', name]).catch(() => {});
  await daemon?.release();
  await rm(work, { recursive: true, force: true });
});

describe('docker-archive destination', () => {
  test('an OCI image (gzip layers stored as they are) is accepted by docker load', async () => {
    const file = join(work, 'app.tar');
    const name = 'local/ballast-copy-oci:1';
    const { result } = await copyToArchive(oci.ociApp.reference, `docker-archive:${file}:${name}`);
    assert.equal(result.blobsCopied, 4);
    assert.equal(result.converted, false);
    const entries = (await run('tar', ['tf', file])).trim().split('\n');
    assert.ok(entries.includes('manifest.json'));
    assert.ok(entries.includes('repositories'));
    assert.equal(entries.filter((entry) => entry.endsWith('/layer.tar')).length, 3);

    const output = await daemon.docker(['load', '-i', file]);
    loaded.push(name);
    assert.match(output, /Loaded image: local\/ballast-copy-oci:1/);
    const configDigest = await configDigestOf(oci.ociApp.reference);
    const inspect = JSON.parse(await daemon.docker(['image', 'inspect', configDigest]))[0];
    assert.equal(inspect.Id, configDigest);
    assert.deepEqual(inspect.RepoTags, [name]);
    assert.deepEqual(inspect.RootFS.Layers, oci.ociApp.diffIds);
    const history = await daemon.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', name]);
    assert.ok(history.trim().split('\n').length >= 3, history);
  });

  test('a Docker image from a docker save archive round-trips through docker load', async () => {
    const file = join(work, 'docker-app.tar');
    const name = 'local/ballast-copy-docker:1';
    await copyToArchive(dockerImages.dockerArchive.reference, `docker-archive:${file}:${name}`);
    await daemon.docker(['load', '-i', file]);
    loaded.push(name);
    const inspect = JSON.parse(await daemon.docker(['image', 'inspect', name]))[0];
    assert.equal(inspect.Id, dockerImages.images.app.id);
    assert.deepEqual(inspect.RootFS.Layers, dockerImages.images.app.diffIds);
    await daemon.docker(['history', name]);
  });

  test('a multi-platform index is reduced to one image (the platform asked for)', async () => {
    const file = join(work, 'multi.tar');
    const arm = oci.ociMulti.images.find((image) => image.architecture === 'arm64')!;
    const { result, events } = await copyToArchive(
      oci.ociMulti.reference,
      `docker-archive:${file}:local/ballast-copy-multi:arm`,
      'linux/arm64',
    );
    assert.equal(result.digest, arm.manifestDigest);
    assert.ok(events.some((e) => e.type === 'platform'));
    const entries = (await run('tar', ['tf', file])).trim().split('\n');
    assert.ok(entries.includes(`${arm.configDigest.slice(7)}.json`));
    const host = await copyToArchive(oci.ociMulti.reference, `docker-archive:${join(work, 'host.tar')}`);
    assert.ok(
      host.events.some((e) => e.type === 'platform'),
      'an archive holds one image: the host platform',
    );
  });

  test('a failed copy leaves no archive and no temp file', async () => {
    const file = join(work, 'failed', 'corrupt.tar');
    await assert.rejects(
      copyToArchive(oci.ociCorrupt.reference, `docker-archive:${file}`),
      (error: unknown) => {
        assert.ok(BallastError.is(error));
        return true;
      },
    );
    assert.deepEqual(await readdir(dirname(file)), []);
  });

  test('an existing archive is replaced whole', async () => {
    const file = join(work, 'replace.tar');
    await writeFile(file, 'old');
    await copyToArchive(oci.ociApp.baseReference, `docker-archive:${file}:local/x:1`);
    assert.ok((await run('tar', ['tf', file])).includes('manifest.json'));
  });
});

describe('archive helpers', () => {
  test('familiar names as docker writes RepoTags', () => {
    assert.equal(familiarName(parseDockerName('ubuntu')), 'ubuntu:latest');
    assert.equal(familiarName(parseDockerName('me/app:2')), 'me/app:2');
    assert.equal(familiarName(parseDockerName('ghcr.io/me/app:2')), 'ghcr.io/me/app:2');
    assert.equal(familiarName(parseDockerName('ghcr.io/me/app:2'), 'v3'), 'ghcr.io/me/app:v3');
  });

  test('tar headers: ustar checksum, GNU base-256 sizes over 8 GiB', () => {
    const header = tarHeader('a/layer.tar', 10);
    assert.equal(header.length, 512);
    assert.equal(header.subarray(257, 262).toString(), 'ustar');
    let sum = 0;
    for (const [i, byte] of header.entries()) sum += i >= 148 && i < 156 ? 32 : byte;
    assert.equal(Number.parseInt(header.subarray(148, 154).toString(), 8), sum);
    const huge = tarHeader('big', 9 * 1024 ** 3);
    assert.equal(huge[124], 0x80);
    assert.equal(huge.readUIntBE(130, 6), 9 * 1024 ** 3);
  });
});
