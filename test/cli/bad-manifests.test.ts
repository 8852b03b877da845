/**
 * Manifests that are not JSON, or not of a known media type, from a registry (through the fault
 * proxy, as a misconfigured proxy or portal would answer) and from an OCI layout; a copy whose source
 * is not there. Each is one clear line and exit 1, and nothing is written.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../../src/image/digest.js';
import { ballast, oneLineError } from '../support/cli.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { buildTinyImage, pushWithSkopeo, startRegistry, type TestRegistry } from '../support/registry.js';

let registry: TestRegistry;
let proxy: FaultProxy;
let work: string;

/** An OCI layout whose one entry points at `body` (with a correct digest). */
async function layoutWith(name: string, body: Buffer, mediaType: string): Promise<string> {
  const dir = join(work, name);
  const digest = sha256(body);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), body);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { mediaType, digest, size: body.length, annotations: { 'org.opencontainers.image.ref.name': 'x' } },
      ],
    }),
  );
  return `oci:${dir}:x`;
}

before(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.host);
  work = await mkdtemp(join(tmpdir(), 'ballast-bad-manifest-'));
  const image = await buildTinyImage(join(work, 'layout'), { tag: 't', layers: [{ f: 'x' }] });
  await pushWithSkopeo(registry, image.ref, 'app:1');
});

after(async () => {
  await proxy?.close();
  await registry?.stop();
});

describe('from a registry', () => {
  const manifests = (request: { method: string; path: string }) => request.path.includes('/manifests/');
  test('an HTML page where the manifest should be', async () => {
    proxy.addFault({
      kind: 'status',
      status: 200,
      headers: { 'content-type': 'text/html' },
      body: '<html>login required</html>',
      match: manifests,
    });
    const result = await ballast(['inspect', '--no-tags', `${proxy.host}/app:1`]);
    assert.equal(result.code, 1);
    assert.match(oneLineError(result), /not JSON/);
  });
  test('JSON of an unknown media type', async () => {
    proxy.addFault({
      kind: 'status',
      status: 200,
      headers: { 'content-type': 'application/vnd.example.thing+json' },
      body: '{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}',
      match: manifests,
    });
    const result = await ballast(['history', `${proxy.host}/app:1`]);
    assert.equal(result.code, 1);
    assert.match(oneLineError(result), /unsupported media type "application\/vnd\.example\.thing\+json"/);
  });
});

describe('from an OCI layout', () => {
  test('a manifest blob that is not JSON', async () => {
    const ref = await layoutWith(
      'not-json',
      Buffer.from('GIF89a...'),
      'application/vnd.oci.image.manifest.v1+json',
    );
    const result = await ballast(['inspect', ref]);
    assert.equal(result.code, 1);
    assert.match(oneLineError(result), /not JSON/);
  });
  test('a manifest of an unknown media type', async () => {
    const ref = await layoutWith('unknown', Buffer.from('{"mediaType":"text/plain"}'), 'text/plain');
    const result = await ballast(['analyze', ref]);
    assert.equal(result.code, 1);
    assert.match(oneLineError(result), /unsupported media type "text\/plain"/);
  });
});

test('a copy whose source is not there writes nothing', async () => {
  const target = join(work, 'never');
  const result = await ballast(['copy', `${registry.host}/app:missing`, `oci:${target}:x`]);
  assert.equal(result.code, 1);
  assert.match(oneLineError(result), /app:missing/);
  assert.equal(existsSync(join(target, 'index.json')), false);
});
