import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { ImageSource } from '../../src/sources/types.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { type OciFixtures, ociFixtures } from '../support/fixtures.js';
import { buildTinyImage, pushWithSkopeo, startRegistry, type TestRegistry } from '../support/registry.js';
import { copyTo, peerView, rejectsWith } from './helpers.js';

let work: string;
let oci: OciFixtures;
let source: TestRegistry;
let target: TestRegistry;
let sourceProxy: FaultProxy;
let proxy: FaultProxy;
let expected: string;
let bigLayer: string;
let repo = 0;

const isPut = (r: { method: string; path: string }) =>
  r.method === 'PUT' && r.path.includes('/blobs/uploads/');

/** Counts how often each blob was read from the source. */
function counting(reads: string[]): (inner: ImageSource) => ImageSource {
  return (inner) =>
    new Proxy(inner, {
      get(target, key, receiver) {
        if (key === 'getBlob') {
          return (...args: Parameters<ImageSource['getBlob']>) => {
            reads.push(args[0].digest);
            return target.getBlob(...args);
          };
        }
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ballast-push-faults-'));
  oci = await ociFixtures();
  [source, target] = await Promise.all([startRegistry(), startRegistry()]);
  const image = await buildTinyImage(join(work, 'layout'), {
    layers: [{ 'big.bin': randomBytes(2 * 1024 * 1024) }],
  });
  await pushWithSkopeo(source, image.ref, 'src/app:1');
  const view = await peerView(`docker://${source.host}/src/app:1`);
  expected = view.digest;
  const manifest = JSON.parse(view.raw.toString('utf8')) as { layers: { digest: string; size: number }[] };
  bigLayer = [...manifest.layers].sort((x, y) => y.size - x.size)[0]!.digest;
  [sourceProxy, proxy] = await Promise.all([startFaultProxy(source.host), startFaultProxy(target.host)]);
});

after(async () => {
  await Promise.all([sourceProxy?.close(), proxy?.close()]);
  await Promise.all([source?.stop(), target?.stop()]);
  await rm(work, { recursive: true, force: true });
});

beforeEach(() => {
  for (const p of [sourceProxy, proxy]) {
    p.clearFaults();
    p.requests.length = 0;
  }
});

/** A new destination repository per test, so no blob is there already. */
function dest(): string {
  repo++;
  return `docker://${proxy.host}/faults/r${repo}:1`;
}

async function landed(ref: string): Promise<void> {
  const stored = ref.replace(proxy.host, target.host);
  assert.equal((await peerView(stored)).digest, expected);
}

describe('faults during a registry to registry copy (fault proxies on both sides)', () => {
  test('a blob download dropped half-way resumes with Range', async () => {
    sourceProxy.addFault({
      kind: 'drop',
      afterBytes: 700 * 1024,
      match: (r) => r.method === 'GET' && r.path.endsWith(`/blobs/${bigLayer}`),
    });
    const to = dest();
    const { result } = await copyTo(`docker://${sourceProxy.host}/src/app:1`, to);
    assert.equal(result.digest, expected);
    assert.equal(sourceProxy.requests.filter((r) => r.action === 'drop').length, 1);
    assert.ok(sourceProxy.requests.some((r) => r.headers.range !== undefined));
    await landed(to);
  });

  test('429 with Retry-After and 503 twice on the upload are retried; the blob is read again', async () => {
    proxy.addFault({ kind: 'status', status: 429, headers: { 'retry-after': '1' }, match: isPut });
    // Faults matching one request all count it: 3 here give 429, 503, 503.
    proxy.addFault({ kind: 'status', status: 503, match: isPut, times: 3 });
    const reads: string[] = [];
    const to = dest();
    const started = Date.now();
    const { result } = await copyTo(`docker://${source.host}/src/app:1`, to, {
      wrap: counting(reads),
      copy: { jobs: 1 },
    });
    assert.equal(result.digest, expected);
    assert.ok(Date.now() - started >= 1000, 'Retry-After: 1 was honoured');
    const statuses = proxy.requests.filter(isPut).map((r) => r.status);
    assert.deepEqual(statuses.slice(0, 3), [429, 503, 503]);
    assert.equal(statuses.filter((s) => s === 201).length, result.blobsCopied);
    // Refused before the body was taken (Expect: 100-continue), the stream is sent again as it is.
    assert.ok(reads.length >= result.blobsCopied, `${reads.length} reads`);
    await landed(to);
  });

  test('503 on starting an upload and on a chunk are retried; the chunk continues where it stopped', async () => {
    proxy.addFault({ kind: 'status', status: 503, match: (r) => r.method === 'POST', times: 2 });
    proxy.addFault({ kind: 'status', status: 503, match: (r) => r.method === 'PATCH', times: 2 });
    const to = dest();
    const { result } = await copyTo(`docker://${source.host}/src/app:1`, to, {
      destination: { chunked: true, chunkSize: 512 * 1024 },
    });
    assert.equal(result.digest, expected);
    assert.equal(proxy.requests.filter((r) => r.action === 'status').length, 4);
    // After a failed PATCH the client asks the session where it is.
    assert.ok(proxy.requests.some((r) => r.method === 'GET' && r.path.includes('/blobs/uploads/')));
    await landed(to);
  });

  test('a connection reset on the upload starts the blob over in a new session', async () => {
    proxy.addFault({ kind: 'reset', match: isPut });
    const to = dest();
    const reads: string[] = [];
    const { result } = await copyTo(`docker://${source.host}/src/app:1`, to, {
      copy: { jobs: 1 },
      wrap: counting(reads),
    });
    // The reset came after the body had started: that blob was read from the source again.
    assert.equal(reads.length, result.blobsCopied + 1);
    assert.equal(result.digest, expected);
    assert.equal(proxy.requests.filter((r) => r.action === 'reset').length, 1);
    await landed(to);
  });

  test('a 403 on the push is DENIED and names the repository; no tag is written', async () => {
    proxy.addFault({ kind: 'status', status: 403, match: (r) => r.method === 'POST', times: 100 });
    const to = dest();
    const error = await rejectsWith(copyTo(`docker://${source.host}/src/app:1`, to), 'DENIED');
    assert.equal(error.exitCode, 1);
    assert.match(error.message, new RegExp(`denied the push to ${proxy.host}/faults/r${repo}`));
    assert.ok(!proxy.requests.some((r) => r.method === 'PUT' && r.path.includes('/manifests/')));
  });

  test('a source blob that does not match its digest is not committed, and no tag is written', async () => {
    const to = dest();
    await rejectsWith(copyTo(oci.ociCorrupt.reference, to, { copy: { jobs: 1 } }), 'DIGEST_MISMATCH');
    const committed = proxy.requests.filter((r) => isPut(r) && r.status === 201).map((r) => r.path);
    assert.ok(!committed.some((path) => path.includes(oci.ociCorrupt.corruptDigest.slice(7))));
    assert.ok(!proxy.requests.some((r) => r.method === 'PUT' && r.path.includes('/manifests/')));
    const head = await fetch(`${target.url}/v2/faults/r${repo}/blobs/${oci.ociCorrupt.corruptDigest}`, {
      method: 'HEAD',
    });
    assert.equal(head.status, 404);
  });
});
