import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { DockerDaemonSource } from '../../src/sources/docker-daemon.js';
import { openSource, resolveImage } from '../../src/sources/open.js';
import { rejectsWith } from '../support/assert.js';
import { type DockerDaemon, startDocker } from '../support/docker.js';
import { type DockerFixtures, ensureDaemonImages, run } from '../support/fixtures.js';
import { streamDigest } from '../support/registry.js';

let daemon: DockerDaemon;
let fx: DockerFixtures;
// skopeo 1.9 ignores DOCKER_HOST for docker-daemon: it takes --daemon-host.
const skopeo = (...args: string[]) => run('skopeo', ['inspect', '--daemon-host', daemon.host, ...args]);

before(async () => {
  // No skip: without a daemon these tests fail with what is missing.
  daemon = await startDocker();
  fx = await ensureDaemonImages(daemon);
});
after(async () => {
  await daemon?.release();
});

describe('DockerDaemonSource against skopeo', () => {
  for (const which of ['name', 'image ID'] as const) {
    it(`returns the manifest, config and layers skopeo does (by ${which})`, async () => {
      const reference =
        which === 'name' ? 'docker-daemon:local/ballast-app:1' : `docker-daemon:${fx.images.app.id}`;
      const source = await openSource(reference, { dockerHost: daemon.host });
      const image = await resolveImage(source);
      assert.equal(image.topLevel.bytes.toString('utf8'), await skopeo('--raw', reference));
      const info = JSON.parse(await skopeo(reference)) as { Name?: string; Digest: string; Layers: string[] };
      assert.equal(image.topLevel.digest, info.Digest);
      assert.deepEqual(
        image.manifest.layers.map((l) => l.digest),
        info.Layers,
      );
      assert.deepEqual(info.Layers, fx.images.app.diffIds);
      assert.equal(image.configBytes.toString('utf8'), await skopeo('--config', '--raw', reference));
      assert.equal(image.config.config?.Labels?.['org.opencontainers.image.title'], 'ballast-app');
      if (which === 'name') assert.equal(source.name, info.Name);
      else {
        assert.equal(info.Name, undefined);
        assert.equal(source.name, reference);
      }
      for (const layer of image.manifest.layers) {
        assert.deepEqual(await streamDigest(await source.getBlob(layer)), {
          bytes: layer.size,
          digest: layer.digest,
        });
      }
    });
  }

  it('gives the same manifest as docker save to an archive', async () => {
    const fromDaemon = await openSource('docker-daemon:local/ballast-app:1', { dockerHost: daemon.host });
    const fromArchive = await openSource(fx.dockerArchive.reference);
    assert.equal((await fromDaemon.getManifest()).digest, (await fromArchive.getManifest()).digest);
  });

  it('takes DOCKER_HOST from the environment when no dockerHost is given', async () => {
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = daemon.host;
    try {
      const source = (await openSource('docker-daemon:local/ballast-tiny:1')) as DockerDaemonSource;
      assert.equal(source.imageId, fx.images.tiny.id);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });

  it("maps docker's own layer sizes to diff IDs", async () => {
    const source = await openSource('docker-daemon:local/ballast-app:1', { dockerHost: daemon.host });
    const sizes = await source.knownLayerSizes!();
    const rows = (
      await daemon.docker([
        'history',
        '--no-trunc',
        '--human=false',
        '--format',
        '{{.Size}}',
        'local/ballast-app:1',
      ])
    )
      .trim()
      .split('\n')
      .map(Number)
      .reverse();
    const [base, payload, run] = fx.images.app.diffIds;
    assert.equal(sizes.size, 3);
    // COPY of a 64 KiB file; RUN that wrote "done\n" (and a whiteout, which weighs nothing).
    assert.equal(sizes.get(payload!), 65536);
    assert.equal(sizes.get(run!), 5);
    assert.equal(sizes.get(base!), rows[0]);
    assert.ok(rows.includes(65536) && rows.includes(5));
  });
});

describe('DockerDaemonSource errors', () => {
  it('is NOT_FOUND for an image the daemon does not have', async () => {
    await rejectsWith(
      openSource('docker-daemon:local/ballast-missing:9', { dockerHost: daemon.host }),
      'NOT_FOUND',
      /docker\.io\/local\/ballast-missing:9 is not in the Docker daemon/,
    );
    await rejectsWith(
      openSource(`docker-daemon:sha256:${'7'.repeat(64)}`, { dockerHost: daemon.host }),
      'NOT_FOUND',
      /sha256:7{64}/,
    );
  });

  it('is DAEMON_UNAVAILABLE when the socket does not exist', async () => {
    const host = 'unix:///tmp/ballast-no-such-dir/docker.sock';
    const error = await rejectsWith(
      openSource('docker-daemon:local/ballast-app:1', { dockerHost: host }),
      'DAEMON_UNAVAILABLE',
      /cannot reach the Docker daemon at unix:\/\/\/tmp\/ballast-no-such-dir\/docker\.sock.*start the Docker daemon, or set DOCKER_HOST/,
    );
    assert.equal(error.exitCode, 1);
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = host;
    try {
      await rejectsWith(
        openSource('docker-daemon:local/ballast-app:1'),
        'DAEMON_UNAVAILABLE',
        /ballast-no-such-dir/,
      );
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });

  it('is DAEMON_UNAVAILABLE for a tcp:// host where nothing listens', async () => {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((done) => server.close(() => done()));
    await rejectsWith(
      openSource('docker-daemon:local/ballast-app:1', { dockerHost: `tcp://127.0.0.1:${port}` }),
      'DAEMON_UNAVAILABLE',
      new RegExp(`tcp://127\\.0\\.0\\.1:${port}.*ECONNREFUSED`),
    );
  });

  it('refuses a DOCKER_HOST it cannot speak', async () => {
    await rejectsWith(
      openSource('docker-daemon:local/ballast-app:1', { dockerHost: 'ssh://user@host' }),
      'USAGE',
      /invalid Docker host/,
    );
  });
});
