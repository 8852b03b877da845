import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BallastError } from '../../src/errors.js';
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

describe('registry over TLS with a self-signed certificate', () => {
  let registry: TestRegistry;
  let work: string;
  let digest: string;
  let layer: { digest: string; size: number };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ballast-tls-'));
    const image = await buildTinyImage(join(work, 'layout'));
    registry = await startRegistry({ tls: true });
    await pushWithSkopeo(registry, image.ref, 'secure/app:1');
    const args = ['--cert-dir', registry.certDir ?? '', '--tls-verify=true'];
    digest = String((await skopeoInspect(`docker://${registry.host}/secure/app:1`, args)).Digest);
    const raw = (await skopeoInspect(`docker://${registry.host}/secure/app:1`, [...args, '--raw'])) as {
      layers?: { digest: string; size: number }[];
    };
    layer = raw.layers?.[0] as { digest: string; size: number };
  });

  after(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('with --ca-file the certificate verifies and the image reads', async () => {
    const source = await RegistrySource.open(parseReference(`${registry.host}/secure/app:1`), {
      caFile: registry.caFile,
    });
    try {
      assert.equal((await source.getManifest()).digest, digest);
      const got = await streamDigest(await source.getBlob(layer));
      assert.deepEqual(got, { bytes: layer.size, digest: layer.digest });
    } finally {
      await source.close();
    }
  });

  test('without a CA: TLS, with a hint naming --ca-file and --insecure; no fallback to HTTP', async () => {
    const client = new RegistryClient(registry.host, { retry: { baseDelayMs: 1 } });
    try {
      const error = await rejectsWith(client.getManifest('secure/app', '1'), 'TLS');
      assert.equal(error.exitCode, 1);
      assert.ok(error.message.includes(registry.host), error.message);
      assert.match(error.hint ?? '', /--ca-file/);
      assert.match(error.hint ?? '', /--insecure/);
    } finally {
      client.close();
    }
  });

  test('--insecure (all, or this host) accepts the unverifiable certificate', async () => {
    for (const insecure of [true, [registry.host]] as const) {
      const client = new RegistryClient(registry.host, {
        insecure: insecure === true ? true : [...insecure],
      });
      try {
        assert.equal((await client.getManifest('secure/app', '1')).digest, digest);
      } finally {
        client.close();
      }
    }
  });

  test('--insecure for another host does not cover this one', async () => {
    const client = new RegistryClient(registry.host, { insecure: ['other.example:5000'] });
    try {
      await rejectsWith(client.getManifest('secure/app', '1'), 'TLS');
    } finally {
      client.close();
    }
  });

  test('a CA file that holds no certificate is a usage error', async () => {
    const file = join(work, 'not-a-cert.pem');
    await writeFile(file, 'hello\n');
    assert.throws(
      () => new RegistryClient(registry.host, { caFile: file }),
      (error: unknown) => BallastError.is(error) && error.exitCode === 2,
    );
  });

  test('a closed port is NETWORK naming the URL', async () => {
    const closed = await startRegistry({});
    const host = closed.host;
    await closed.stop();
    const client = new RegistryClient(host, { retry: { baseDelayMs: 1 } });
    try {
      const error = await rejectsWith(client.getManifest('a/b', 'c'), 'NETWORK');
      assert.match(error.message, new RegExp(`https://${host}/v2/a/b/manifests/c: connection refused`));
    } finally {
      client.close();
    }
  });
});
