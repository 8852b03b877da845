/**
 * Faults of an OCI layout destination: a copy killed in the middle of a blob, and a full disk. In both
 * the layout must still validate, and a new run must finish without resending what was done.
 *
 * This file is also the child process that gets killed: with BALLAST_COPY_CHILD set it runs one slow
 * copy and prints its events as JSON lines instead of registering tests.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { copyImage } from '../../src/copy/copy.js';
import { OciLayoutDestination } from '../../src/copy/oci-layout-destination.js';
import { BallastError } from '../../src/errors.js';
import { parseReference } from '../../src/reference/parse.js';
import { openSource } from '../../src/sources/open.js';
import type { ImageSource } from '../../src/sources/types.js';
import { type OciFixtures, ociFixtures, pseudoRandom } from '../support/fixtures.js';
import { buildTinyImage, run } from '../support/registry.js';

/** A source whose big blobs trickle out in small, slow chunks, so a kill lands mid-blob. */
function slowed(source: ImageSource): ImageSource {
  return new Proxy(source, {
    get(target, property, receiver) {
      if (property !== 'getBlob') return Reflect.get(target, property, receiver);
      return async (descriptor: Parameters<ImageSource['getBlob']>[0]) => {
        const stream = await target.getBlob(descriptor);
        if (descriptor.size < 500_000) return stream;
        const slow = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            // 16 kB every 40 ms: a 1 MB layer takes about 2.5 s.
            let offset = 0;
            const next = () => {
              if (offset >= chunk.length) return callback();
              this.push(chunk.subarray(offset, offset + 16384));
              offset += 16384;
              setTimeout(next, 40);
            };
            next();
          },
        });
        stream.once('error', (error) => slow.destroy(error));
        return stream.pipe(slow);
      };
    },
  });
}

async function child(): Promise<void> {
  const [from, to] = [process.env.BALLAST_COPY_FROM!, process.env.BALLAST_COPY_TO!];
  const source = slowed(await openSource(from));
  const destination = await OciLayoutDestination.open(parseReference(to));
  await copyImage(source, destination, {
    jobs: 1,
    onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
  });
  process.stdout.write('{"type":"finished"}\n');
}

async function validate(dir: string, tag: string): Promise<void> {
  await run('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${tag}`, dir]);
}

async function copyInProcess(from: string, to: string) {
  const source = await openSource(from);
  const destination = await OciLayoutDestination.open(parseReference(to));
  try {
    return await copyImage(source, destination);
  } finally {
    await destination.close();
    await source.close();
  }
}

if (process.env.BALLAST_COPY_CHILD) {
  await child();
} else {
  let work: string;
  let oci: OciFixtures;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ballast-copy-faults-'));
    oci = await ociFixtures();
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  describe('a copy killed mid-blob', () => {
    test('leaves a layout that validates, and the re-run completes without resending finished blobs', async () => {
      const dir = join(work, 'killed');
      await copyInProcess(oci.ociApp.baseReference, `oci:${dir}:base`);
      const indexBefore = await readFile(join(dir, 'index.json'));

      const proc = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
        env: {
          ...process.env,
          BALLAST_COPY_CHILD: '1',
          BALLAST_COPY_FROM: oci.ociApp.reference,
          BALLAST_COPY_TO: `oci:${dir}:app`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      proc.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const done = new Set<string>();
      const skipped = new Set<string>();
      let killedDuring: string | undefined;
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        proc.once('exit', (_code, signal) => resolve(signal)),
      );
      let buffered = '';
      proc.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const event = JSON.parse(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
          if (event.type === 'blob-done') done.add(event.digest);
          if (event.type === 'blob-skipped') skipped.add(event.digest);
          if (
            event.type === 'blob-progress' &&
            event.size > 500_000 &&
            event.bytes > 100_000 &&
            !killedDuring
          ) {
            killedDuring = event.digest;
            proc.kill('SIGKILL');
          }
        }
      });
      const signal = await exited;
      assert.equal(signal, 'SIGKILL', `the child should be killed mid-blob, not finish: ${stderr}`);
      assert.ok(killedDuring);
      assert.ok(done.size >= 1, 'some blobs were finished before the kill');
      assert.ok(!done.has(killedDuring));

      // The killed copy left its partial blob behind, under a temp name only.
      const leftovers = (await readdir(join(dir, 'blobs', 'sha256'))).filter((name) => name.startsWith('.'));
      assert.equal(leftovers.length, 1);
      assert.ok(!(await readdir(join(dir, 'blobs', 'sha256'))).includes(killedDuring.slice(7)));
      assert.deepEqual(await readFile(join(dir, 'index.json')), indexBefore, 'index.json untouched');
      await validate(dir, 'base');

      const rerun = await copyInProcess(oci.ociApp.reference, `oci:${dir}:app`);
      assert.equal(rerun.digest, oci.ociApp.manifestDigest);
      assert.equal(rerun.blobsSkipped, done.size + skipped.size, 'the finished blobs are not sent again');
      assert.equal(rerun.blobsCopied, 4 - rerun.blobsSkipped);
      assert.ok(rerun.bytesCopied >= oci.ociApp.bigSize);
      await validate(dir, 'app');
      await validate(dir, 'base');
      const after = (await readdir(join(dir, 'blobs', 'sha256'))).filter((name) => name.startsWith('.'));
      assert.deepEqual(after, [], 'the stale temp file of the killed process is removed');
    });
  });

  describe('a full disk', () => {
    let mountPoint: string | undefined;
    after(async () => {
      if (mountPoint !== undefined) await run('umount', [mountPoint]).catch(() => {});
    });

    test('is one clear BallastError and leaves the layout valid', async () => {
      const big = await buildTinyImage(join(work, 'big-source'), {
        tag: 'big',
        layers: [{ 'data.bin': pseudoRandom('enospc', 3 * 1024 * 1024) }],
      });
      mountPoint = join(work, 'tmpfs');
      await mkdir(mountPoint);
      await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint]);
      const dir = join(mountPoint, 'layout');
      await copyInProcess(oci.ociApp.baseReference, `oci:${dir}:base`);
      const indexBefore = await readFile(join(dir, 'index.json'));

      await assert.rejects(copyInProcess(big.ref, `oci:${dir}:big`), (error: unknown) => {
        assert.ok(BallastError.is(error), String(error));
        assert.equal(error.code, 'IO');
        assert.match(error.message, /no space left on the device/);
        assert.ok(error.hint);
        return true;
      });
      assert.deepEqual(await readFile(join(dir, 'index.json')), indexBefore);
      const leftovers = (await readdir(join(dir, 'blobs', 'sha256'))).filter((name) => name.startsWith('.'));
      assert.deepEqual(leftovers, [], 'no partial blob left to fill the disk');
      await validate(dir, 'base');
    });
  });
}
