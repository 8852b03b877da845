/**
 * A small tar writer for synthetic test layers. It writes what real layer tools write (ustar, pax
 * extended headers, GNU long-name entries, base-256 numbers), and on request what they should not
 * (a bad checksum, a missing end, a cut stream). Bodies may be declared by size alone: they are then
 * streamed as zeros, so a header can claim gigabytes without memory to match.
 */
import { Readable } from 'node:stream';

export type WriterType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'contiguous';

export interface WriterEntry {
  path: string;
  type?: WriterType;
  /** A raw type flag, overriding `type` (for unknown types). */
  typeflag?: string;
  body?: Buffer | string;
  /** The size to declare when there is no `body`: the data is that many zero bytes. */
  size?: number;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  /** How to store names and numbers that do not fit the ustar fields. Default 'pax'. */
  long?: 'pax' | 'gnu' | 'ustar-prefix';
  /** Write the size field in base-256 even when it fits in octal. */
  base256?: boolean;
  /** Extra pax records for this entry (written in an 'x' header before it). */
  pax?: Record<string, string>;
  /** Write a wrong checksum into this entry's header. */
  corruptChecksum?: boolean;
}

export interface WriterOptions {
  /** How the archive ends: two zero blocks (default), one, none, or one followed by junk. */
  end?: 'full' | 'one-block' | 'none' | 'lone-zero-then-data';
  /** A pax global header ('g') at the start. */
  global?: Record<string, string>;
  /** Pad the archive to a multiple of this many bytes with zeros, as GNU tar pads to 10240. */
  record?: number;
}

const BLOCK = 512;
const ZEROS = Buffer.alloc(1024 * 1024);
const OCTAL_LIMITS: Record<number, number> = { 8: 0o7777777, 12: 0o77777777777 };

const FLAGS: Record<WriterType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
  contiguous: '7',
};

function writeString(header: Buffer, text: string, offset: number, length: number): void {
  const bytes = Buffer.from(text, 'utf8');
  bytes.copy(header, offset, 0, Math.min(bytes.length, length));
}

function fitsOctal(value: number, length: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= (OCTAL_LIMITS[length] ?? 0);
}

function writeOctal(header: Buffer, value: number, offset: number, length: number): void {
  // length-1 digits and a NUL, as GNU tar writes them.
  header.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

/** GNU base-256: a 0x80 marker byte (0xff for negatives), then the two's complement big-endian. */
export function writeBase256(header: Buffer, value: number, offset: number, length: number): void {
  let rest = BigInt(value);
  const negative = rest < 0n;
  if (negative) rest = (1n << BigInt(length * 8)) + rest;
  for (let i = length - 1; i >= 0; i--) {
    header[offset + i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  header[offset] = negative ? 0xff : (header[offset]! & 0x7f) | 0x80;
}

function writeChecksum(header: Buffer, corrupt: boolean): void {
  header.fill(32, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  if (corrupt) sum += 1;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
}

interface RawHeader {
  name: string;
  flag: string;
  size: number;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  prefix?: string;
  gnu?: boolean;
  base256?: boolean;
  corruptChecksum?: boolean;
}

function header(raw: RawHeader): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, raw.name, 0, 100);
  writeOctal(block, raw.mode ?? (raw.flag === '5' ? 0o755 : 0o644), 100, 8);
  const numbers: [number, number, number][] = [
    [raw.uid ?? 0, 108, 8],
    [raw.gid ?? 0, 116, 8],
    [raw.size, 124, 12],
    [Math.floor(raw.mtime ?? 1700000000), 136, 12],
  ];
  for (const [value, offset, length] of numbers) {
    if (fitsOctal(value, length) && !(raw.base256 && offset === 124))
      writeOctal(block, value, offset, length);
    else writeBase256(block, value, offset, length);
  }
  block.write(raw.flag, 156, 1, 'latin1');
  writeString(block, raw.linkname ?? '', 157, 100);
  if (raw.gnu) block.write('ustar  \0', 257, 8, 'ascii');
  else block.write('ustar\x0000', 257, 8, 'ascii');
  writeString(block, raw.uname ?? 'root', 265, 32);
  writeString(block, raw.gname ?? 'root', 297, 32);
  writeOctal(block, raw.devmajor ?? 0, 329, 8);
  writeOctal(block, raw.devminor ?? 0, 337, 8);
  if (raw.prefix) writeString(block, raw.prefix, 345, 155);
  writeChecksum(block, raw.corruptChecksum === true);
  return block;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** pax records: each "%d %s=%s\n" with the length counting itself. */
export function paxRecords(records: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(records)) {
    const tail = ` ${key}=${value}\n`;
    const tailLength = Buffer.byteLength(tail);
    let length = tailLength + 1;
    while (String(length).length + tailLength !== length) length = String(length).length + tailLength;
    parts.push(Buffer.from(`${length}${tail}`, 'utf8'));
  }
  return Buffer.concat(parts);
}

function metaEntry(name: string, flag: string, body: Buffer, gnu: boolean): Buffer[] {
  return [header({ name, flag, size: body.length, gnu, mode: 0o644 }), body, padding(body.length)];
}

/** Splits a long path into a ustar prefix (<= 155 bytes) and name (<= 100), when one exists. */
function splitPrefix(path: string): { prefix: string; name: string } | undefined {
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0) {
      return { prefix, name };
    }
  }
  return undefined;
}

/** The blocks of one entry, its body streamed as zeros when only a size is given. */
export function* entryChunks(entry: WriterEntry): Generator<Buffer> {
  const type = entry.type ?? 'file';
  const flag = entry.typeflag ?? FLAGS[type];
  const body = typeof entry.body === 'string' ? Buffer.from(entry.body, 'utf8') : entry.body;
  const hasData = flag === '0' || flag === '7' || entry.typeflag !== undefined;
  const size = body?.length ?? entry.size ?? 0;
  const dataSize = hasData ? size : 0;
  const long = entry.long ?? 'pax';
  const gnu = long === 'gnu';

  let name = entry.path;
  let prefix: string | undefined;
  let linkname = entry.linkname ?? '';
  const pax: Record<string, string> = { ...entry.pax };
  if (Buffer.byteLength(name) > 100) {
    const split = long === 'ustar-prefix' ? splitPrefix(name) : undefined;
    if (split) {
      ({ prefix, name } = split);
    } else if (gnu) {
      yield* metaEntry('././@LongLink', 'L', Buffer.from(`${name}\0`), true);
      name = name.slice(0, 100);
    } else {
      pax.path = name;
      name = name.slice(0, 100);
    }
  }
  if (Buffer.byteLength(linkname) > 100) {
    if (gnu) yield* metaEntry('././@LongLink', 'K', Buffer.from(`${linkname}\0`), true);
    else pax.linkpath = linkname;
    linkname = linkname.slice(0, 100);
  }
  if (!gnu && !entry.base256) {
    if (!fitsOctal(dataSize, 12)) pax.size = String(dataSize);
    if (entry.mtime !== undefined && (!Number.isInteger(entry.mtime) || !fitsOctal(entry.mtime, 12))) {
      pax.mtime = String(entry.mtime);
    }
    if (entry.uid !== undefined && !fitsOctal(entry.uid, 8)) pax.uid = String(entry.uid);
    if (entry.gid !== undefined && !fitsOctal(entry.gid, 8)) pax.gid = String(entry.gid);
  }
  if (Object.keys(pax).length > 0) {
    const paxName = `PaxHeaders/${entry.path.split('/').pop()!.slice(0, 80)}`;
    yield* metaEntry(paxName, 'x', paxRecords(pax), false);
  }
  const raw: RawHeader = {
    name,
    flag,
    size: dataSize,
    linkname,
    gnu,
    base256: entry.base256 === true,
    corruptChecksum: entry.corruptChecksum === true,
  };
  if (prefix !== undefined) raw.prefix = prefix;
  for (const key of ['mode', 'uid', 'gid', 'mtime', 'uname', 'gname', 'devmajor', 'devminor'] as const) {
    const value = entry[key];
    if (value !== undefined) (raw as unknown as Record<string, unknown>)[key] = value;
  }
  // Values that went into pax headers still need a field: the largest octal, as GNU tar writes.
  if (pax.uid !== undefined) raw.uid = 0o7777777;
  if (pax.gid !== undefined) raw.gid = 0o7777777;
  if (pax.size !== undefined) raw.size = 0;
  yield header(raw);
  if (dataSize === 0) return;
  if (body) {
    yield body;
  } else {
    let left = dataSize;
    while (left > 0) {
      const step = Math.min(left, ZEROS.length);
      yield step === ZEROS.length ? ZEROS : ZEROS.subarray(0, step);
      left -= step;
    }
  }
  const pad = padding(dataSize);
  if (pad.length > 0) yield pad;
}

/** All chunks of an archive. */
export function* tarChunks(entries: Iterable<WriterEntry>, options: WriterOptions = {}): Generator<Buffer> {
  let written = 0;
  const count = function* (chunks: Iterable<Buffer>): Generator<Buffer> {
    for (const chunk of chunks) {
      written += chunk.length;
      yield chunk;
    }
  };
  if (options.global) yield* count(metaEntry('GlobalHead.0', 'g', paxRecords(options.global), false));
  for (const entry of entries) yield* count(entryChunks(entry));
  const end = options.end ?? 'full';
  if (end === 'full') yield* count([Buffer.alloc(2 * BLOCK)]);
  if (end === 'one-block') yield* count([Buffer.alloc(BLOCK)]);
  if (end === 'lone-zero-then-data') {
    yield* count([Buffer.alloc(BLOCK)]);
    yield* count(entryChunks({ path: 'after-the-end', body: 'ignored' }));
  }
  if (options.record && end === 'full' && written % options.record !== 0) {
    yield Buffer.alloc(options.record - (written % options.record));
  }
}

/** A whole archive in memory (small test layers). */
export function writeTar(entries: Iterable<WriterEntry>, options: WriterOptions = {}): Buffer {
  return Buffer.concat([...tarChunks(entries, options)]);
}

/** An archive as a stream, produced lazily (big synthetic layers). */
export function tarStream(entries: Iterable<WriterEntry>, options: WriterOptions = {}): Readable {
  return Readable.from(tarChunks(entries, options), { objectMode: false });
}

/** A stream of `buffer` cut into chunks of `size` bytes: the reader must not care where chunks end. */
export function chunked(buffer: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buffer.length; i += size) chunks.push(buffer.subarray(i, i + size));
  return Readable.from(chunks, { objectMode: false });
}

/** The whiteout entry that deletes `name` in directory `dir` ('' for the root). */
export function whiteout(dir: string, name: string): WriterEntry {
  return { path: dir === '' ? `.wh.${name}` : `${dir}/.wh.${name}`, body: '' };
}

/** The opaque marker of directory `dir`. */
export function opaque(dir: string): WriterEntry {
  return { path: dir === '' ? '.wh..wh..opq' : `${dir}/.wh..wh..opq`, body: '' };
}
