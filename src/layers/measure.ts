/**
 * Measuring layers: the file bytes of a layer are the sum of its regular files' sizes in the tar, which
 * is what `docker history` shows for layers built or pulled with the vfs or naive-diff drivers
 * (hardlinks, symlinks and directories weigh 0 there).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { BallastError } from '../errors.js';
import { isDigest } from '../image/digest.js';
import { type Compression, type DecompressOptions, decompress, detectCompression } from './decompress.js';
import {
  parseTarFile,
  type TarEntry,
  type TarIssue,
  TarParser,
  type TarReadOptions,
  type TarSummary,
} from './tar.js';

export interface LayerMeasure {
  /** Sum of the sizes of regular files (whiteout markers included, they are empty). */
  fileBytes: number;
  /** Tar entries (pax and long-name headers not counted). */
  entries: number;
  /** Regular files, whiteout markers excluded. */
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** Devices, fifos and unknown types. */
  others: number;
  /** `.wh.` entries, opaque markers included. */
  whiteouts: number;
  /** Bytes of the uncompressed tar (what the layer's diff ID hashes). */
  tarBytes: number;
  /** Bytes of the layer as stored; equal to tarBytes for a plain tar. */
  compressedBytes: number;
  compression: Compression;
  /** Whether the tar ended with its two zero blocks. */
  endMarker: boolean;
  issues: TarIssue[];
  issueCount: number;
}

/** An uncompressed or compressed layer stored in a file, possibly inside a bigger archive. */
export interface LayerFile {
  path: string;
  offset?: number;
  length?: number;
}

export interface ScanOptions extends TarReadOptions, DecompressOptions {
  /** Named in error messages, e.g. "layer 2 (sha256:...) of alpine". */
  what?: string;
  /**
   * The layer's diff ID (config rootfs.diff_ids): the uncompressed tar is hashed as it passes and a
   * mismatch fails with DIGEST_MISMATCH. A plain tar in a file is then read whole instead of seeking.
   */
  diffId?: string;
}

/** Counts entries as they pass; shared by the measuring and the change-reading paths. */
export class LayerTally {
  fileBytes = 0;
  entries = 0;
  files = 0;
  dirs = 0;
  symlinks = 0;
  hardlinks = 0;
  others = 0;
  whiteouts = 0;

  add(entry: TarEntry): void {
    this.entries++;
    switch (entry.type) {
      case 'file':
        this.fileBytes += entry.size;
        if (isWhiteout(entry.path)) this.whiteouts++;
        else this.files++;
        break;
      case 'dir':
        this.dirs++;
        break;
      case 'symlink':
        this.symlinks++;
        break;
      case 'hardlink':
        this.hardlinks++;
        break;
      default:
        if (isWhiteout(entry.path)) this.whiteouts++;
        else this.others++;
    }
  }
}

function isWhiteout(path: string): boolean {
  return path.startsWith('.wh.', path.lastIndexOf('/') + 1);
}

/** Prefixes the layer's name to an error, so that the message says which layer. */
export function namedLayerError(error: unknown, what: string | undefined): unknown {
  if (what === undefined || !BallastError.is(error)) return error;
  return new BallastError(error.code, `${what}: ${error.message}`, {
    cause: error.cause ?? error,
    exitCode: error.exitCode,
    ...(error.hint === undefined ? {} : { hint: error.hint }),
  });
}

function isLayerFile(input: Readable | LayerFile): input is LayerFile {
  return typeof (input as LayerFile).path === 'string' && typeof (input as Readable).pipe !== 'function';
}

/**
 * Reads a layer (a stream of any compression, or a file range) through the tar reader, calling
 * `onEntry` for each entry, and returns its measure. A plain tar in a file is read by seeking.
 */
export async function scanLayer(
  input: Readable | LayerFile,
  onEntry: ((entry: TarEntry) => void) | undefined,
  options: ScanOptions = {},
): Promise<LayerMeasure> {
  const tally = new LayerTally();
  const each = onEntry
    ? (entry: TarEntry) => {
        tally.add(entry);
        onEntry(entry);
      }
    : (entry: TarEntry) => tally.add(entry);
  try {
    if (isLayerFile(input)) return await scanFile(input, tally, each, options);
    const layer = await decompress(input, options);
    const tar = await parseStream(layer.stream, each, options);
    return result(tally, tar, layer.compression, layer.compressedBytes() ?? tar.bytes);
  } catch (error) {
    throw namedLayerError(error, options.what);
  }
}

async function scanFile(
  file: LayerFile,
  tally: LayerTally,
  each: (entry: TarEntry) => void,
  options: ScanOptions,
): Promise<LayerMeasure> {
  const offset = file.offset ?? 0;
  let length = file.length;
  const head = Buffer.alloc(4);
  try {
    const handle = await open(file.path, 'r');
    try {
      length ??= (await handle.stat()).size - offset;
      await handle.read(head, 0, Math.min(4, length), offset);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new BallastError('IO', `cannot read ${file.path}: ${(error as Error).message}`, { cause: error });
  }
  const compression = length >= 2 ? detectCompression(head) : 'none';
  if (compression === 'none' && options.diffId === undefined) {
    const tar = await parseTarFile(file.path, { offset, length }, each, options);
    return result(tally, tar, 'none', tar.bytes);
  }
  const stream = createReadStream(file.path, {
    start: offset,
    end: offset + length - 1,
    highWaterMark: 256 * 1024,
  });
  const layer = await decompress(stream, options);
  const tar = await parseStream(layer.stream, each, options);
  return result(tally, tar, layer.compression, layer.compressedBytes() ?? length);
}

/** parseTar, hashing the tar bytes on the way when a diff ID is to be verified. */
async function parseStream(
  stream: Readable,
  each: (entry: TarEntry) => void,
  options: ScanOptions,
): Promise<TarSummary> {
  const parser = new TarParser(each, options);
  const expected = options.diffId;
  if (expected === undefined) {
    for await (const chunk of stream) parser.write(chunk as Buffer);
    return parser.end();
  }
  if (!isDigest(expected))
    throw new BallastError('MANIFEST_INVALID', `invalid diff ID ${JSON.stringify(expected)}`);
  const algorithm = expected.slice(0, expected.indexOf(':'));
  const hash = createHash(algorithm);
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    parser.write(chunk as Buffer);
  }
  const tar = parser.end();
  const actual = `${algorithm}:${hash.digest('hex')}`;
  if (actual !== expected) {
    throw new BallastError(
      'DIGEST_MISMATCH',
      `the uncompressed layer does not match its diff ID ${expected} (got ${actual})`,
    );
  }
  return tar;
}

function result(
  tally: LayerTally,
  tar: { bytes: number; endMarker: boolean; issues: TarIssue[]; issueCount: number },
  compression: Compression,
  compressedBytes: number,
): LayerMeasure {
  return {
    fileBytes: tally.fileBytes,
    entries: tally.entries,
    files: tally.files,
    dirs: tally.dirs,
    symlinks: tally.symlinks,
    hardlinks: tally.hardlinks,
    others: tally.others,
    whiteouts: tally.whiteouts,
    tarBytes: tar.bytes,
    compressedBytes,
    compression,
    endMarker: tar.endMarker,
    issues: tar.issues,
    issueCount: tar.issueCount,
  };
}

/**
 * The measure of a layer stream of any compression (sniffed). Reads the stream to its end, so a
 * verifying source checks the digest. `what` names the layer in error messages.
 */
export function measureLayer(stream: Readable, what?: string): Promise<LayerMeasure> {
  return scanLayer(stream, undefined, what === undefined ? {} : { what });
}

/**
 * The measure of a layer stored at (offset, length) of a file, e.g. `<id>/layer.tar` inside a
 * `docker save` archive. A plain tar is read by seeking from header to header; a compressed one is
 * streamed. Nothing is verified against a digest here.
 */
export function measureLayerFile(
  path: string,
  offset = 0,
  length?: number,
  what?: string,
): Promise<LayerMeasure> {
  const file: LayerFile = length === undefined ? { path, offset } : { path, offset, length };
  return scanLayer(file, undefined, what === undefined ? {} : { what });
}
