import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { BallastError } from '../../src/errors.js';
import { RegistryClient } from '../../src/registry/client.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import {
  buildTinyImage,
  pushWithSkopeo,
  skopeoInspect,
  startRegistry,
  streamDigest,
  type TestRegistry,
} from '../support/registry.js';

interface RawManifest {
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
}

const isBlob = (r: { method: string; path: string }) => r.method === 'GET' && r.path.includes('/blobs/');
const isManifest = (r: { method: string; path: string }) => r.path.includes('/manifests/');

describe('faults between client and registry (a proxy in front of the real registry)', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let digest: string;
  let big: { digest: string; size: number };
  let client: RegistryClient;
  let warnings: string[];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ballast-faults-'));
    const image = await buildTinyImage(join(work, 'layout'), {
      layers: [{ 'big.bin': randomBytes(3 * 1024 * 1024) }],
    });
    registry = await startRegistry({});
    await pushWithSkopeo(registry, image.ref, 'flaky/app:1');
    digest = String((await skopeoInspect(`docker://${registry.host}/flaky/app:1`)).Digest);
    const raw = (await skopeoInspect(`docker://${registry.host}/flaky/app:1`, [
      '--raw',
    ])) as unknown as RawManifest;
    big = raw.layers[0] as { digest: string; size: number };
    assert.ok(big.size > 3 * 1024 * 1024);
    proxy = await startFaultProxy(registry.host);
  });

  beforeEach(() => {
    proxy.clearFaults();
    proxy.requests.length = 0;
    warnings = [];
    client = new RegistryClient(proxy.host, {
      retry: { baseDelayMs: 20, maxDelayMs: 200 },
      onWarning: (m) => warnings.push(m),
    });
  });

  afterEach(() => client.close());

  after(async () => {
    await proxy?.close();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('a blob download dropped half-way resumes with Range and still has the right digest', async () => {
    const half = Math.floor(big.size / 2);
    proxy.addFault({ kind: 'drop', afterBytes: half, match: isBlob });
    const progress: number[] = [];
    const stream = await client.getBlob('flaky/app', big, { onProgress: (p) => progress.push(p.bytes) });
    assert.deepEqual(await streamDigest(stream), { bytes: big.size, digest: big.digest });
    const blobRequests = proxy.requests.filter(isBlob);
    assert.equal(blobRequests.length, 2);
    assert.equal(blobRequests[0]?.action, 'drop');
    assert.equal(blobRequests[0]?.headers.range, undefined);
    // The resume asks for the rest, from exactly the bytes that arrived.
    const range = String(blobRequests[1]?.headers.range);
    const from = Number(/^bytes=(\d+)-$/.exec(range)?.[1]);
    assert.ok(from > 0 && from <= half, `resumed from ${range}`);
    assert.equal(blobRequests[1]?.status, 206);
    assert.equal(progress.at(-1), big.size);
  });

  test('a server that ignores Range on the resume (200): the first bytes are skipped', async () => {
    proxy.addFault({ kind: 'drop', afterBytes: 1024 * 1024, match: isBlob });
    proxy.addFault({ kind: 'ignore-range', match: (r) => isBlob(r) && r.headers.range !== undefined });
    const stream = await client.getBlob('flaky/app', big);
    assert.deepEqual(await streamDigest(stream), { bytes: big.size, digest: big.digest });
    const blobRequests = proxy.requests.filter(isBlob);
    assert.equal(blobRequests.length, 2);
    assert.equal(blobRequests[1]?.status, 200);
  });

  test('a download that keeps dropping gives up after the bounded resumes with NETWORK', async () => {
    const limited = new RegistryClient(proxy.host, { retry: { baseDelayMs: 1 }, maxBlobResumes: 2 });
    try {
      proxy.addFault({ kind: 'drop', afterBytes: 100_000, match: isBlob, times: 10 });
      const stream = await limited.getBlob('flaky/app', big);
      await assert.rejects(
        streamDigest(stream),
        (error: unknown) =>
          BallastError.is(error) && error.code === 'NETWORK' && /resumed 2 times/.test(error.message),
      );
      assert.equal(proxy.requests.filter(isBlob).length, 3);
    } finally {
      limited.close();
    }
  });

  test('429 with Retry-After: 1 is waited out once, then the manifest reads', async () => {
    proxy.addFault({ kind: 'status', status: 429, headers: { 'retry-after': '1' }, match: isManifest });
    const started = Date.now();
    const manifest = await client.getManifest('flaky/app', '1');
    const elapsed = Date.now() - started;
    assert.equal(manifest.digest, digest);
    assert.ok(elapsed >= 950, `waited ${elapsed} ms`);
    assert.deepEqual(
      proxy.requests.filter(isManifest).map((r) => r.status),
      [429, 200],
    );
  });

  test('503 twice, then the blob reads; each retry is a new request', async () => {
    proxy.addFault({ kind: 'status', status: 503, match: isBlob, times: 2 });
    const stream = await client.getBlob('flaky/app', big);
    assert.deepEqual(await streamDigest(stream), { bytes: big.size, digest: big.digest });
    assert.deepEqual(
      proxy.requests.filter(isBlob).map((r) => r.status),
      [503, 503, 200],
    );
  });

  test('503 for good: HTTP after the bounded attempts', async () => {
    proxy.addFault({ kind: 'status', status: 503, match: isManifest, times: 100 });
    await assert.rejects(
      client.getManifest('flaky/app', '1'),
      (error: unknown) => BallastError.is(error) && error.code === 'HTTP' && /503/.test(error.message),
    );
    assert.equal(proxy.requests.filter(isManifest).length, 5);
  });

  test('403 is DENIED naming the registry, and not retried', async () => {
    proxy.addFault({ kind: 'status', status: 403, match: isManifest, times: 5 });
    await assert.rejects(
      client.getManifest('flaky/app', '1'),
      (error: unknown) =>
        BallastError.is(error) &&
        error.code === 'DENIED' &&
        error.message.includes(proxy.host) &&
        error.exitCode === 1,
    );
    assert.equal(proxy.requests.filter(isManifest).length, 1);
  });

  test('a connection reset before any answer is retried', async () => {
    proxy.addFault({ kind: 'reset', match: isManifest });
    assert.equal((await client.getManifest('flaky/app', '1')).digest, digest);
    assert.deepEqual(
      proxy.requests.filter(isManifest).map((r) => r.action),
      ['reset', 'pass'],
    );
  });

  test('a low Docker-Hub-style rate limit is reported through onWarning', async () => {
    proxy.addFault({
      kind: 'add-headers',
      headers: { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '7;w=21600' },
      match: isManifest,
    });
    await client.getManifest('flaky/app', '1');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /7 of 100 pulls left in the 6 h window/);
  });

  test('a comfortable rate limit is not reported', async () => {
    proxy.addFault({
      kind: 'add-headers',
      headers: { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600' },
      match: isManifest,
    });
    await client.getManifest('flaky/app', '1');
    assert.deepEqual(warnings, []);
  });
});
