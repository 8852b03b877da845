import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import * as zlib from 'node:zlib';
import { BallastError } from '../../src/errors.js';
import {
  decompress,
  decompressedStream,
  detectCompression,
  type ZstdDecoder,
} from '../../src/layers/decompress.js';
import { chunked, writeTar } from '../support/tar-writer.js';

const hasZstdCli = (() => {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();
const hasZlibZstd =
  typeof (zlib as unknown as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';

/** zstd from the CLI reading stdin: a frame without a content size, as streamed layers are. */
function zstdCli(input: Buffer, ...args: string[]): Buffer {
  return execFileSync('zstd', ['-q', '-c', ...args], { input, maxBuffer: 64 * 1024 * 1024 });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function rejectsLayer(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(BallastError.is(error), `expected a BallastError, got ${String(error)}`);
    assert.equal(error.code, 'LAYER_INVALID');
    assert.match(error.message, pattern);
    return true;
  });
}

/** Pseudo-random but compressible content, so that compressed streams have many blocks. */
function content(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let state = seed;
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[i] = ((state >>> 24) % 40) + 48;
  }
  return out;
}

const TAR = writeTar([
  { path: 'a', body: content(300_000) },
  { path: 'b', body: content(5000, 7) },
]);

describe('decompression', () => {
  it('sniffs the first bytes', () => {
    assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
    assert.equal(detectCompression(Buffer.from('usr/')), 'none');
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5])), 'none');
    assert.equal(detectCompression(Buffer.alloc(0)), 'none');
  });

  it('passes a plain tar through unchanged, even in one-byte chunks', async () => {
    const layer = await decompress(chunked(TAR.subarray(0, 2000), 1));
    assert.equal(layer.compression, 'none');
    assert.equal(layer.decoder, 'none');
    assert.deepEqual(await collect(layer.stream), TAR.subarray(0, 2000));
    assert.equal(layer.compressedBytes(), undefined);
  });

  it('reads an empty input as an empty plain stream', async () => {
    const layer = await decompress(Readable.from([], { objectMode: false }));
    assert.equal(layer.compression, 'none');
    assert.equal((await collect(layer.stream)).length, 0);
  });

  it('decompresses gzip, whatever the chunking, and counts the compressed bytes', async () => {
    const gz = zlib.gzipSync(TAR);
    for (const size of [1, 3, 1000, gz.length]) {
      const layer = await decompress(chunked(gz, size));
      assert.equal(layer.compression, 'gzip');
      assert.deepEqual(await collect(layer.stream), TAR);
      assert.equal(layer.compressedBytes(), gz.length);
    }
  });

  it('decompresses multi-member gzip', async () => {
    const gz = Buffer.concat([zlib.gzipSync(TAR.subarray(0, 1000)), zlib.gzipSync(TAR.subarray(1000))]);
    assert.deepEqual(await collect(await decompressedStream(chunked(gz, 4096))), TAR);
  });

  it('fails with LAYER_INVALID on truncated gzip', async () => {
    const gz = zlib.gzipSync(TAR);
    await rejectsLayer(
      collect(await decompressedStream(chunked(gz.subarray(0, gz.length - 100), 4096))),
      /truncated gzip/,
    );
  });

  it('fails with LAYER_INVALID on corrupt gzip', async () => {
    const gz = Buffer.from(zlib.gzipSync(TAR));
    for (let i = 200; i < 260; i++) gz[i] = gz[i]! ^ 0x5a;
    await rejectsLayer(collect(await decompressedStream(chunked(gz, 4096))), /corrupt gzip data/);
  });

  it("keeps the input's own error (a digest mismatch), not a decompression error", async () => {
    const gz = zlib.gzipSync(TAR);
    const input = new Readable({ read() {} });
    input.push(gz.subarray(0, 5000));
    setImmediate(() => input.destroy(new BallastError('DIGEST_MISMATCH', 'blob does not match')));
    await assert.rejects(collect(await decompressedStream(input)), (error: unknown) => {
      assert.ok(BallastError.is(error));
      assert.equal(error.code, 'DIGEST_MISMATCH');
      return true;
    });
  });

  const decoders: ZstdDecoder[] = ['fzstd', 'auto'];
  if (hasZlibZstd) decoders.push('zlib');
  for (const choice of decoders) {
    it(`decompresses streamed zstd with the ${choice} decoder`, {
      skip: !hasZstdCli && 'no zstd CLI',
    }, async () => {
      const zst = zstdCli(TAR);
      assert.equal(detectCompression(zst), 'zstd');
      for (const size of [7, 4096, zst.length]) {
        const layer = await decompress(chunked(zst, size), { zstd: choice });
        assert.equal(layer.compression, 'zstd');
        assert.deepEqual(await collect(layer.stream), TAR);
        assert.equal(layer.compressedBytes(), zst.length);
      }
    });

    it(`decompresses multi-frame zstd with the ${choice} decoder`, {
      skip: !hasZstdCli && 'no zstd CLI',
    }, async () => {
      const zst = Buffer.concat([zstdCli(TAR.subarray(0, 10_000)), zstdCli(TAR.subarray(10_000), '-19')]);
      assert.deepEqual(await collect(await decompressedStream(chunked(zst, 5000), { zstd: choice })), TAR);
    });

    it(`fails with LAYER_INVALID on truncated zstd (${choice})`, {
      skip: !hasZstdCli && 'no zstd CLI',
    }, async () => {
      const zst = zstdCli(TAR);
      await rejectsLayer(
        collect(await decompressedStream(chunked(zst.subarray(0, zst.length - 50), 4096), { zstd: choice })),
        /truncated zstd data/,
      );
    });
  }

  it('uses the decoder that auto picks on this Node', async () => {
    const zst = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x01, 0x00, 0x00]); // an empty frame
    const layer = await decompress(chunked(zst, 100));
    assert.equal(layer.decoder, hasZlibZstd ? 'zlib-zstd' : 'fzstd');
    layer.stream.resume();
  });

  it('refuses zstd-napi when asked for it and it is missing', async (t) => {
    let installed = true;
    try {
      const name = 'zstd-napi';
      await import(name);
    } catch {
      installed = false;
    }
    if (installed) {
      t.skip('zstd-napi is installed');
      return;
    }
    const zst = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x01, 0x00, 0x00]);
    await rejectsLayer(decompress(chunked(zst, 100), { zstd: 'napi' }), /zstd-napi is not installed/);
  });
});
