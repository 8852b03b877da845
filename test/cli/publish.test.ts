/**
 * The seed's publishing story through the real binary: log in to two registries (one with tokens as
 * Docker Hub and GHCR use, one with basic auth), copy, then sync one image to both; a second sync
 * copies nothing; a destination that refuses does not stop the other.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ballast, oneLineError } from '../support/cli.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import {
  buildTinyImage,
  pushWithSkopeo,
  run,
  startRegistry,
  type TestRegistry,
} from '../support/registry.js';

const SECRET = 'Gh-Pat-0123456789abcdef';
const USERS = { arturo: SECRET };

let source: TestRegistry;
let hub: TestRegistry;
let ghcr: TestRegistry;
let work: string;
let env: NodeJS.ProcessEnv;

interface SyncSummary {
  copied: number;
  upToDate: number;
  failed: number;
  bytesCopied: number;
  results: { destination: string; status: string; error: string | null }[];
}

before(async () => {
  [source, hub, ghcr] = await Promise.all([
    startRegistry(),
    startRegistry({ auth: 'token', users: USERS }),
    startRegistry({ auth: 'basic', users: USERS }),
  ]);
  work = await mkdtemp(join(tmpdir(), 'ballast-publish-'));
  const image = await buildTinyImage(join(work, 'layout'), {
    tag: 'latest',
    layers: [{ 'app/test.sh': '#!/bin/sh\nmake test\n' }, { 'app/data': Buffer.alloc(200_000, 3) }],
  });
  await pushWithSkopeo(source, image.ref, 'crab-iot:latest');
  await pushWithSkopeo(source, image.ref, 'crab-iot:1.2');
  await mkdir(join(work, 'docker'), { recursive: true });
  env = { DOCKER_CONFIG: join(work, 'docker'), HOME: join(work, 'home'), REGISTRY_AUTH_FILE: '' };
});

after(async () => {
  await Promise.all([source?.stop(), hub?.stop(), ghcr?.stop()]);
});

describe('login', () => {
  test('wrong credentials: one line, exit 1, nothing stored, no secret', async () => {
    const result = await ballast(['login', hub.host, '-u', 'arturo', '--password-stdin'], {
      env,
      input: 'nope-nope\n',
    });
    assert.equal(result.code, 1);
    oneLineError(result);
    assert.ok(!result.stderr.includes('nope-nope'));
    await assert.rejects(readFile(join(work, 'docker', 'config.json'), 'utf8'));
  });
  test('a password as an argument is refused', async () => {
    const result = await ballast(['login', hub.host, '-u', 'arturo', '-p', SECRET], { env });
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /--password-stdin/);
    assert.ok(!result.stderr.includes(SECRET));
  });
  test('both registries, stored where docker and skopeo read them', async () => {
    for (const registry of [hub, ghcr]) {
      const result = await ballast(['login', registry.host, '-u', 'arturo', '--password-stdin'], {
        env,
        input: `${SECRET}\n`,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Login Succeeded/);
      assert.ok(!`${result.stdout}${result.stderr}`.includes(SECRET));
    }
    const config = JSON.parse(await readFile(join(work, 'docker', 'config.json'), 'utf8')) as {
      auths: Record<string, { auth: string }>;
    };
    assert.equal(Buffer.from(config.auths[hub.host]!.auth, 'base64').toString(), `arturo:${SECRET}`);
    // skopeo reads the same file.
    const { stdout } = await run('skopeo', [
      'list-tags',
      '--tls-verify=false',
      '--authfile',
      join(work, 'docker', 'config.json'),
      `docker://${source.host}/crab-iot`,
    ]);
    assert.deepEqual((JSON.parse(stdout) as { Tags: string[] }).Tags.sort(), ['1.2', 'latest']);
  });
});

describe('copy', () => {
  test('registry to registry, digest kept; again copies 0 bytes', async () => {
    const from = `${source.host}/crab-iot:latest`;
    const to = `${hub.host}/arturocs/crab-iot:copied`;
    const first = await ballast(['copy', '--format', 'json', from, to], { env });
    assert.equal(first.code, 0, first.stderr);
    const result = JSON.parse(first.stdout) as {
      blobsCopied: number;
      bytesCopied: number;
      digest: string;
      sourceDigest: string;
    };
    assert.equal(result.blobsCopied, 3);
    assert.equal(result.digest, result.sourceDigest);
    const inspect = await ballast(['inspect', '--no-tags', to], { env });
    assert.equal(JSON.parse(inspect.stdout).Digest, result.sourceDigest);
    const again = JSON.parse((await ballast(['copy', '--format', 'json', from, to], { env })).stdout) as {
      bytesCopied: number;
      blobsSkipped: number;
    };
    assert.equal(again.bytesCopied, 0);
    assert.equal(again.blobsSkipped, 3);
  });
  test('the text summary', async () => {
    const result = await ballast(['copy', `${source.host}/crab-iot:1.2`, `oci:${join(work, 'out')}:1.2`]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Copied .* 3 blobs copied \(\d+(\.\d+)?k?B\)/);
    await run('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=1.2', join(work, 'out')]);
  });
});

describe('sync', () => {
  let config: string;
  before(async () => {
    config = join(work, 'publish.yaml');
    await writeFile(
      config,
      [
        'images:',
        `  - source: ${source.host}/crab-iot`,
        '    tags: [latest, "1.2"]',
        '    destinations:',
        `      - ${hub.host}/arturocs/crab-iot`,
        `      - ${ghcr.host}/arturocs/crab-iot`,
        '',
      ].join('\n'),
    );
  });
  test('publishes to both, then a second run copies 0 bytes', async () => {
    const dry = JSON.parse(
      (await ballast(['sync', '--dry-run', '--format', 'json', config], { env })).stdout,
    ) as SyncSummary & { wouldCopy: number };
    assert.equal(dry.wouldCopy, 4);
    const first = await ballast(['sync', '--format', 'json', config], { env });
    assert.equal(first.code, 0, first.stderr);
    const summary = JSON.parse(first.stdout) as SyncSummary;
    assert.equal(summary.copied, 4);
    // Both tags are one image, and the hub repository has its blobs from the copy test: only the
    // second registry receives them, once.
    const raw = await ballast(['inspect', '--raw', `${source.host}/crab-iot:latest`]);
    const manifest = JSON.parse(raw.stdout) as { config: { size: number }; layers: { size: number }[] };
    const blobBytes = manifest.config.size + manifest.layers.reduce((sum, l) => sum + l.size, 0);
    assert.equal(summary.bytesCopied, blobBytes);
    const second = await ballast(['sync', '--format', 'json', config], { env });
    const again = JSON.parse(second.stdout) as SyncSummary;
    assert.equal(again.bytesCopied, 0);
    assert.equal(again.upToDate, 4);
    const text = await ballast(['sync', config], { env });
    assert.match(text.stdout, /4 pairs: 0 copied, 4 up to date, 0 failed; 0B sent/);
    for (const registry of [hub, ghcr]) {
      const { stdout } = await run('skopeo', [
        'inspect',
        '--tls-verify=false',
        '--authfile',
        join(work, 'docker', 'config.json'),
        `docker://${registry.host}/arturocs/crab-iot:1.2`,
      ]);
      const expected = await ballast(['inspect', '--no-tags', `${source.host}/crab-iot:1.2`]);
      assert.equal(JSON.parse(stdout).Digest, JSON.parse(expected.stdout).Digest);
    }
  });
  test('tags that share blobs, synced at once, send each blob to a destination once', async () => {
    const fresh = await startRegistry();
    try {
      for (const tag of ['a', 'b', 'c']) {
        await run('skopeo', [
          'copy',
          '--quiet',
          '--src-tls-verify=false',
          '--dest-tls-verify=false',
          `docker://${source.host}/crab-iot:latest`,
          `docker://${source.host}/shared:${tag}`,
        ]);
      }
      const file = join(work, 'shared.yaml');
      await writeFile(
        file,
        `images:\n  - source: ${source.host}/shared\n    tags: [a, b, c]\n    destinations: [${fresh.host}/mirror]\n`,
      );
      const result = await ballast(['sync', '--format', 'json', '--concurrency', '3', file]);
      assert.equal(result.code, 0, result.stderr);
      const summary = JSON.parse(result.stdout) as SyncSummary;
      const raw = JSON.parse((await ballast(['inspect', '--raw', `${source.host}/shared:a`])).stdout) as {
        config: { size: number };
        layers: { size: number }[];
      };
      assert.equal(summary.bytesCopied, raw.config.size + raw.layers.reduce((sum, l) => sum + l.size, 0));
    } finally {
      await fresh.stop();
    }
  });

  test('an image synced to two registries is read from its source once', async () => {
    const [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    const proxy = await startFaultProxy(source.host);
    try {
      const file = join(work, 'two.yaml');
      await writeFile(
        file,
        `images:\n  - source: ${proxy.host}/crab-iot\n    tags: [latest]\n    destinations: [${a.host}/x/crab-iot, ${b.host}/x/crab-iot]\n`,
      );
      const result = await ballast(['sync', '--format', 'json', file]);
      assert.equal(result.code, 0, result.stderr);
      const summary = JSON.parse(result.stdout) as SyncSummary;
      assert.equal(summary.copied, 2);
      const blobReads = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
      assert.equal(blobReads.length, 3, 'config and two layers, each read once');
      for (const registry of [a, b]) {
        const copied = await ballast(['inspect', '--no-tags', `${registry.host}/x/crab-iot:latest`]);
        const original = await ballast(['inspect', '--no-tags', `${source.host}/crab-iot:latest`]);
        assert.equal(JSON.parse(copied.stdout).Digest, JSON.parse(original.stdout).Digest);
      }
    } finally {
      await proxy.close();
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('a destination that refuses does not stop the other; exit 1', async () => {
    const other = join(work, 'partial.yaml');
    const locked = await startRegistry({ auth: 'basic', users: { someone: 'else-entirely' } });
    try {
      await writeFile(
        other,
        `images:\n  - source: ${source.host}/crab-iot\n    tags: [latest]\n    destinations:\n      - ${locked.host}/x/crab-iot\n      - oci:${join(work, 'mirror')}\n`,
      );
      const result = await ballast(['sync', '--format', 'json', other], { env });
      assert.equal(result.code, 1);
      const summary = JSON.parse(result.stdout) as SyncSummary;
      assert.deepEqual(summary.results.map((r) => r.status).sort(), ['copied', 'failed']);
      assert.match(summary.results.find((r) => r.status === 'failed')?.error ?? '', new RegExp(locked.host));
    } finally {
      await locked.stop();
    }
  });
  test('a config with an unknown key names its line', async () => {
    const bad = join(work, 'bad.yaml');
    await writeFile(bad, `images:\n  - source: ${source.host}/crab-iot\n    destinatons: [x]\n`);
    const result = await ballast(['sync', bad], { env });
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /bad\.yaml:3/);
  });
});

describe('logout', () => {
  test('removes the stored credentials', async () => {
    const result = await ballast(['logout', ghcr.host], { env });
    assert.equal(result.code, 0, result.stderr);
    const config = JSON.parse(await readFile(join(work, 'docker', 'config.json'), 'utf8')) as {
      auths: Record<string, unknown>;
    };
    assert.equal(config.auths[ghcr.host], undefined);
    assert.ok(config.auths[hub.host]);
  });
});
