/** A copy to a registry killed mid-blob, run again: it completes and sends only what is missing. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ballast } from '../support/cli.js';
import {
  buildTinyImage,
  pushWithSkopeo,
  skopeoInspect,
  startRegistry,
  type TestRegistry,
} from '../support/registry.js';

const SLOW_COPY = fileURLToPath(new URL('../support/slow-copy.js', import.meta.url));
let from: TestRegistry;
let to: TestRegistry;

before(async () => {
  [from, to] = await Promise.all([startRegistry(), startRegistry()]);
  const work = await mkdtemp(join(tmpdir(), 'ballast-interrupt-'));
  // Random bytes do not compress: each layer blob is ~1 MB, a few seconds at the trickle's pace.
  const image = await buildTinyImage(join(work, 'layout'), {
    tag: 'i',
    layers: [{ a: randomBytes(1_000_000) }, { b: randomBytes(1_000_000) }, { c: randomBytes(1_000_000) }],
  });
  await pushWithSkopeo(from, image.ref, 'big:1');
});

after(async () => {
  await Promise.all([from?.stop(), to?.stop()]);
});

test('killed after its first blob, the copy run again skips what was sent', async () => {
  const source = `${from.host}/big:1`;
  const destination = `${to.host}/big:1`;
  const child = spawn(process.execPath, [SLOW_COPY, source, destination], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const finished: string[] = [];
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      finished.push(...chunk.toString().trim().split('\n'));
      child.kill('SIGKILL');
    });
    child.on('close', () => resolve());
    child.on('error', reject);
  });
  assert.ok(finished.length >= 1, 'the copy was killed before any blob was done');
  const blobs = 4; // config and three layers
  assert.ok(finished.length < blobs, 'the copy finished before it could be killed');
  // The tag was never written: the manifest goes last.
  const missing = await ballast(['inspect', '--no-tags', destination]);
  assert.equal(missing.code, 1);
  const result = await ballast(['copy', '--format', 'json', source, destination]);
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { blobsCopied: number; blobsSkipped: number; digest: string };
  assert.equal(summary.blobsSkipped, finished.length);
  assert.equal(summary.blobsCopied, blobs - finished.length);
  assert.equal(
    (await skopeoInspect(`docker://${destination}`)).Digest,
    (await skopeoInspect(`docker://${source}`)).Digest,
  );
});
