import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type DockerDaemon, startDocker } from '../support/docker.js';
import { type DockerFixtures, ensureDaemonImages } from '../support/fixtures.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { copyTo, peerView } from './helpers.js';

let daemon: DockerDaemon;
let fixtures: DockerFixtures;
let registry: TestRegistry;
const pulled: string[] = [];

before(async () => {
  daemon = await startDocker();
  fixtures = await ensureDaemonImages(daemon);
  registry = await startRegistry();
});

after(async () => {
  if (pulled.length > 0) await daemon?.docker(['rmi', '-f', ...pulled]).catch(() => '');
  await registry?.stop();
  await daemon?.release();
});

/** `docker pull`, then the image's diff IDs as the daemon sees them. */
async function pull(name: string): Promise<string[]> {
  await daemon.docker(['pull', '-q', name]);
  pulled.push(name);
  const [info] = JSON.parse(await daemon.docker(['image', 'inspect', name])) as {
    RootFS: { Layers: string[] };
  }[];
  return info!.RootFS.Layers;
}

describe('images copied to a registry, pulled and run by the real Docker daemon', () => {
  test('from a docker save archive: docker pulls it and runs it', async () => {
    const name = `${registry.host}/pushed/archive:1`;
    const { result } = await copyTo(fixtures.dockerArchive.reference, `docker://${name}`);
    assert.equal((await peerView(`docker://${name}`)).digest, result.digest);
    assert.deepEqual(await pull(name), fixtures.images.app.diffIds);
    const out = await daemon.docker(['run', '--rm', '--network', 'none', name]);
    assert.equal(out.trim(), 'done');
    const hello = await daemon.docker(['run', '--rm', '--network', 'none', name, '/bin/cat', '/etc/hello']);
    assert.equal(hello.trim(), 'hello from the tiny rootfs');
  });

  test('from the daemon itself (docker-daemon:): pulled back under a new name, runs with sh', async () => {
    const name = `${registry.host}/pushed/daemon:1`;
    const { result } = await copyTo(`docker-daemon:${fixtures.images.app.name}`, `docker://${name}`, {
      source: { dockerHost: daemon.host },
    });
    assert.equal((await peerView(`docker://${name}`)).digest, result.digest);
    assert.deepEqual(await pull(name), fixtures.images.app.diffIds);
    const out = await daemon.docker([
      'run',
      '--rm',
      '--network',
      'none',
      name,
      '/bin/sh',
      '-c',
      'echo ran; cat /done',
    ]);
    assert.deepEqual(out.trim().split('\n'), ['ran', 'done']);
  });
});
