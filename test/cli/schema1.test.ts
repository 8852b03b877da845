/** Docker schema 1 manifests: inspected, and refused with a clear message where they cannot be used. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { sha256 } from '../../src/image/digest.js';
import { ballast, oneLineError } from '../support/cli.js';

const LAYERS = [`sha256:${'1'.repeat(64)}`, `sha256:${'2'.repeat(64)}`];
let reference: string;
let digest: string;

before(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ballast-schema1-'));
  const v1 = (fields: Record<string, unknown>) => ({ v1Compatibility: JSON.stringify(fields) });
  // fsLayers and history are listed top first in schema 1.
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 1,
      name: 'library/old',
      tag: 'v1',
      architecture: 'amd64',
      fsLayers: [{ blobSum: LAYERS[1] }, { blobSum: LAYERS[0] }],
      history: [
        v1({
          id: 'top',
          created: '2016-05-01T10:00:00.5Z',
          docker_version: '1.11.0',
          os: 'linux',
          architecture: 'amd64',
          config: { Env: ['PATH=/bin'], Labels: { era: 'old' } },
        }),
        v1({ id: 'bottom', created: '2016-04-01T10:00:00Z' }),
      ],
    }),
  );
  digest = sha256(manifest);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), manifest);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
          digest,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  );
  reference = `oci:${dir}:v1`;
});

test('inspect reads a schema 1 manifest from its v1Compatibility history', async () => {
  const result = await ballast(['inspect', reference]);
  assert.equal(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout) as Record<string, unknown>;
  assert.equal(out.Digest, digest);
  assert.equal(out.Created, '2016-05-01T10:00:00.5Z');
  assert.equal(out.DockerVersion, '1.11.0');
  assert.deepEqual(out.Labels, { era: 'old' });
  assert.deepEqual(out.Env, ['PATH=/bin']);
  assert.deepEqual(out.Layers, LAYERS);
});

test('history, analyze and copy refuse it with one clear line', async () => {
  const commands = [
    ['history', reference],
    ['analyze', reference],
    ['copy', reference, `oci:${tmpdir()}/never:v1`],
  ];
  for (const args of commands) {
    const result = await ballast(args);
    assert.equal(result.code, 1, `${args[0]}: ${result.stderr}`);
    assert.match(oneLineError(result), /schema 1/);
  }
});
