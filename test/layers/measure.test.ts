import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  linkSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { BallastError } from '../../src/errors.js';
import { measureLayer, measureLayerFile, scanLayer } from '../../src/layers/measure.js';
import { chunked, opaque, type WriterEntry, whiteout, writeTar } from '../support/tar-writer.js';

const scratch = mkdtempSync(join(tmpdir(), 'ballast-measure-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const hasZstdCli = (() => {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();

/** A seeded mix of files (some empty, some crossing block sizes), dirs, links and whiteouts. */
function syntheticLayer(seed: number): { entries: WriterEntry[]; fileBytes: number; files: number } {
  let state = seed;
  const random = (n: number) => {
    state = (state * 1103515245 + 12345) >>> 0;
    return state % n;
  };
  const entries: WriterEntry[] = [];
  let fileBytes = 0;
  let files = 0;
  for (let d = 0; d < 20; d++) {
    const dir = `usr/lib/d${d}${'-long'.repeat(random(40))}`;
    entries.push({ path: `${dir}/`, type: 'dir' });
    for (let f = 0; f < 15; f++) {
      const size = [0, 1, 511, 512, 513, random(100_000)][random(6)]!;
      const path = `${dir}/f${f}`;
      entries.push({ path, size, long: random(2) === 0 ? 'gnu' : 'pax' });
      fileBytes += size;
      files++;
      if (random(5) === 0) entries.push({ path: `${path}.hl`, type: 'hardlink', linkname: path });
      if (random(5) === 0) entries.push({ path: `${path}.sl`, type: 'symlink', linkname: `f${f}` });
    }
    if (random(3) === 0) entries.push(whiteout(dir, 'gone'));
  }
  entries.push(opaque('etc'));
  return { entries, fileBytes, files };
}

describe('measureLayer', () => {
  const { entries, fileBytes, files } = syntheticLayer(42);
  const tar = writeTar(entries);

  it('sums the regular files of a plain, gzip and zstd layer to what was written', async () => {
    const inputs: [string, Buffer][] = [
      ['none', tar],
      ['gzip', gzipSync(tar)],
    ];
    if (hasZstdCli) inputs.push(['zstd', execFileSync('zstd', ['-q', '-c'], { input: tar })]);
    for (const [compression, bytes] of inputs) {
      const measure = await measureLayer(chunked(bytes, 16_384));
      assert.equal(measure.compression, compression);
      assert.equal(measure.fileBytes, fileBytes, compression);
      assert.equal(measure.files, files);
      assert.equal(measure.tarBytes, tar.length);
      assert.equal(measure.compressedBytes, bytes.length);
      assert.equal(measure.endMarker, true);
      assert.equal(measure.entries, entries.length);
    }
  });

  it('measures a layer inside a file by seeking (plain) or streaming (gzip)', async () => {
    const gz = gzipSync(tar);
    const path = join(scratch, 'archive.bin');
    const junk = Buffer.alloc(3333, 0xee);
    writeFileSync(path, Buffer.concat([junk, tar, junk, gz, junk]));
    const plain = await measureLayerFile(path, junk.length, tar.length);
    assert.equal(plain.compression, 'none');
    assert.equal(plain.fileBytes, fileBytes);
    assert.equal(plain.tarBytes, tar.length);
    const compressed = await measureLayerFile(path, 2 * junk.length + tar.length, gz.length);
    assert.equal(compressed.compression, 'gzip');
    assert.equal(compressed.fileBytes, fileBytes);
    assert.equal(compressed.compressedBytes, gz.length);
    const whole = join(scratch, 'layer.tar');
    writeFileSync(whole, tar);
    assert.equal((await measureLayerFile(whole)).fileBytes, fileBytes);
  });

  it('agrees with tar -tv and the file sizes on disk for an archive GNU tar wrote', async () => {
    const root = join(scratch, 'tree');
    let onDisk = 0;
    for (let d = 0; d < 5; d++) {
      mkdirSync(join(root, `dir${d}`, 'sub'), { recursive: true });
      for (let f = 0; f < 10; f++) {
        const file = join(root, `dir${d}`, f % 2 ? 'sub' : '', `file${f}`);
        writeFileSync(file, Buffer.alloc(d * 1000 + f * 77, 'a'));
        onDisk += statSync(file).size;
      }
    }
    // A hardlink's bytes count once: GNU tar stores the second name as a link entry of size 0.
    linkSync(join(root, 'dir1/file0'), join(root, 'dir1/file0-link'));
    symlinkSync('file0', join(root, 'dir1/file0-symlink'));
    for (const format of ['gnu', 'pax']) {
      const path = join(scratch, `tree-${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-C', root, '-cf', path, '.']);
      const listed = execFileSync('tar', ['-tvf', path], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('-'))
        .reduce((sum, line) => sum + Number(line.split(/\s+/)[2]), 0);
      const measure = await measureLayer(createReadStream(path));
      assert.equal(measure.fileBytes, listed);
      assert.equal(measure.fileBytes, onDisk);
      assert.equal(measure.hardlinks, 1);
      assert.equal(measure.symlinks, 1);
      assert.equal(measure.files, 50);
      assert.equal((await measureLayerFile(path)).fileBytes, onDisk);
      const gz = join(scratch, `tree-${format}.tar.gz`);
      writeFileSync(gz, gzipSync(await readFile(path)));
      assert.equal((await measureLayerFile(gz)).fileBytes, onDisk);
    }
  });

  it('names the layer in errors', async () => {
    const gz = gzipSync(tar);
    await assert.rejects(
      measureLayer(chunked(gz.subarray(0, 1000), 100), 'layer 0 (sha256:abc) of test'),
      (error) => {
        assert.ok(BallastError.is(error));
        assert.equal(error.code, 'LAYER_INVALID');
        assert.equal(
          error.message,
          'layer 0 (sha256:abc) of test: truncated gzip data (the layer ends early)',
        );
        return true;
      },
    );
    const path = join(scratch, 'cut.tar');
    writeFileSync(path, tar.subarray(0, 4000));
    await assert.rejects(
      measureLayerFile(path, 0, undefined, 'layer 1'),
      /^BallastError: layer 1: truncated tar/,
    );
  });

  it('verifies the diff ID when asked, streaming and from a file', async () => {
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    const wrong = `sha256:${'0'.repeat(64)}`;
    const measure = await scanLayer(chunked(gzipSync(tar), 8192), undefined, { diffId });
    assert.equal(measure.fileBytes, fileBytes);
    const path = join(scratch, 'verify.tar');
    writeFileSync(path, tar);
    assert.equal((await scanLayer({ path }, undefined, { diffId })).fileBytes, fileBytes);
    for (const input of [chunked(gzipSync(tar), 8192), { path }]) {
      await assert.rejects(scanLayer(input, undefined, { diffId: wrong, what: 'layer 0' }), (error) => {
        assert.ok(BallastError.is(error));
        assert.equal(error.code, 'DIGEST_MISMATCH');
        assert.match(error.message, /^layer 0: the uncompressed layer does not match its diff ID/);
        return true;
      });
    }
  });

  it('fails with IO on a missing file', async () => {
    await assert.rejects(measureLayerFile(join(scratch, 'missing.tar')), (error) => {
      assert.ok(BallastError.is(error));
      assert.equal(error.code, 'IO');
      return true;
    });
  });
});
