/**
 * Layer decompression. The format is sniffed from the first bytes, never taken from the media type:
 * registries and `docker save` archives label layers loosely (a `.tar` that is gzip, a `+gzip` that is
 * plain), and the bytes are what Docker itself goes by.
 */
import { type Duplex, pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { Decompress as FzstdDecompress } from 'fzstd';
import { BallastError } from '../errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

/** Which zstd decoder to use; `auto` picks zlib's own (Node 22.15+), then zstd-napi, then fzstd. */
export type ZstdDecoder = 'auto' | 'zlib' | 'napi' | 'fzstd';

export interface DecompressOptions {
  zstd?: ZstdDecoder;
  /** Size of the decompressed chunks; bigger chunks mean fewer callbacks on the hot path. */
  chunkSize?: number;
}

export interface DecompressedLayer {
  /** The plain tar bytes. Fails with a `LAYER_INVALID` BallastError on corrupt or truncated data. */
  stream: Readable;
  compression: Compression;
  /** Which decoder is in use (`gunzip`, `zlib-zstd`, `zstd-napi`, `fzstd` or `none`). */
  decoder: string;
  /** Compressed bytes read from the input so far; undefined for a plain tar (the tar reader counts it). */
  compressedBytes(): number | undefined;
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const DEFAULT_CHUNK = 128 * 1024;

/** The compression the first bytes of a layer announce. */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) return 'gzip';
  if (head.length >= 4 && ZSTD_MAGIC.every((byte, i) => head[i] === byte)) return 'zstd';
  return 'none';
}

/** The plain tar stream of a layer, whatever its compression. */
export async function decompressedStream(
  input: Readable,
  options: DecompressOptions = {},
): Promise<Readable> {
  return (await decompress(input, options)).stream;
}

/** Sniffs the input's compression and returns its decompressed stream. */
export async function decompress(
  input: Readable,
  options: DecompressOptions = {},
): Promise<DecompressedLayer> {
  const { head, stream } = await peek(input, 4);
  const compression = detectCompression(head);
  if (compression === 'none') {
    // No 'data' listener here: it would start the flow before the caller is listening.
    return { stream, compression, decoder: 'none', compressedBytes: () => undefined };
  }
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  let decoder: Duplex;
  let name: string;
  if (compression === 'gzip') {
    decoder = zlib.createGunzip({ chunkSize });
    name = 'gunzip';
  } else {
    ({ decoder, name } = await zstdDecoder(options.zstd ?? 'auto', chunkSize));
  }
  mapErrors(decoder, compression);
  // Observing 'data' next to pipe() costs one callback per chunk and leaves backpressure alone.
  let bytesIn = 0;
  stream.on('data', (chunk: Buffer) => {
    bytesIn += chunk.length;
  });
  // pipeline() destroys the input when the decoder fails or the reader gives up, and the decoder
  // (with the input's own error, e.g. a digest mismatch) when the input fails.
  pipeline(stream, decoder, () => {});
  return { stream: decoder, compression, decoder: name, compressedBytes: () => bytesIn };
}

interface ZlibWithZstd {
  createZstdDecompress?: (options?: { chunkSize?: number }) => Duplex;
}

async function zstdDecoder(
  choice: ZstdDecoder,
  chunkSize: number,
): Promise<{ decoder: Duplex; name: string }> {
  const builtIn = (zlib as unknown as ZlibWithZstd).createZstdDecompress;
  if ((choice === 'auto' || choice === 'zlib') && typeof builtIn === 'function') {
    return { decoder: builtIn({ chunkSize }), name: 'zlib-zstd' };
  }
  if (choice === 'zlib') {
    throw new BallastError('LAYER_INVALID', `this Node.js (${process.version}) has no built-in zstd decoder`);
  }
  if (choice === 'auto' || choice === 'napi') {
    const napi = await loadZstdNapi();
    if (napi) return { decoder: new napi.DecompressStream(), name: 'zstd-napi' };
    if (choice === 'napi') throw new BallastError('LAYER_INVALID', 'zstd-napi is not installed');
  }
  return { decoder: new FzstdStream(), name: 'fzstd' };
}

interface ZstdNapi {
  DecompressStream: new () => Duplex;
}

let zstdNapi: Promise<ZstdNapi | undefined> | undefined;

/** zstd-napi is an optional native addon: present on some installs, never required. */
function loadZstdNapi(): Promise<ZstdNapi | undefined> {
  zstdNapi ??= (async () => {
    try {
      // A variable specifier keeps tsc from requiring the module's types at build time.
      const specifier = 'zstd-napi';
      const module = (await import(specifier)) as Partial<ZstdNapi> & { default?: Partial<ZstdNapi> };
      const DecompressStream = module.DecompressStream ?? module.default?.DecompressStream;
      return typeof DecompressStream === 'function' ? { DecompressStream } : undefined;
    } catch {
      return undefined;
    }
  })();
  return zstdNapi;
}

/** fzstd's streaming decoder (pure JS) as a Transform; it is correct on frames without a content size. */
class FzstdStream extends Transform {
  private readonly decoder: FzstdDecompress;

  constructor() {
    super();
    this.decoder = new FzstdDecompress((data) => {
      // fzstd hands out a fresh array per block, so wrapping it without a copy is safe.
      if (data.length > 0) this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.decoder.push(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.decoder.push(new Uint8Array(0), true);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }
}

/**
 * Turns the decoder's own errors into LAYER_INVALID. Hooking _destroy changes the error every listener
 * sees without an extra stream in the hot path; the input's errors (BallastErrors) pass unchanged.
 */
function mapErrors(decoder: Duplex, compression: Compression): void {
  const original = decoder._destroy;
  decoder._destroy = function (this: Duplex, error: Error | null, callback: (error?: Error | null) => void) {
    original.call(this, error, (result?: Error | null) =>
      callback(result ? layerError(result, compression) : result),
    );
  };
}

function layerError(error: Error, compression: Compression): Error {
  if (BallastError.is(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  // Stream plumbing errors (a reader that gave up) are not about the data.
  if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ABORT_ERR') return error;
  const truncated = code === 'Z_BUF_ERROR' || /unexpected end|EOF|ended in middle/i.test(error.message);
  const what = compression === 'gzip' ? 'gzip' : 'zstd';
  return new BallastError(
    'LAYER_INVALID',
    truncated ? `truncated ${what} data (the layer ends early)` : `corrupt ${what} data: ${error.message}`,
    { cause: error },
  );
}

/**
 * Reads at least `count` bytes (fewer at the end of the stream) and puts them back, so the stream
 * starts over. A stream that ended already cannot take bytes back: a new one replaces it.
 */
function peek(input: Readable, count: number): Promise<{ head: Buffer; stream: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const cleanup = () => {
      input.off('readable', onReadable);
      input.off('end', onEnd);
      input.off('error', onError);
    };
    const onReadable = () => {
      while (length < count) {
        const chunk = input.read() as Buffer | null;
        if (chunk === null) break;
        chunks.push(chunk);
        length += chunk.length;
      }
      if (length < count) return;
      cleanup();
      const head = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      input.unshift(head);
      resolve({ head, stream: input });
    };
    const onEnd = () => {
      cleanup();
      resolve({ head: Buffer.concat(chunks), stream: Readable.from(chunks) });
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    input.on('readable', onReadable);
    input.on('end', onEnd);
    input.on('error', onError);
  });
}
