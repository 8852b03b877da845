/**
 * Tar header parsing for indexing `docker save` archives: ustar, pax (`x`, `g`) and GNU long names
 * (`L`, `K`), base-256 sizes. Only what an archive index needs; the layer reader in src/layers/ is a
 * separate, faster path over layer contents.
 */
import { posix } from 'node:path';
import { BallastError } from '../../errors.js';

export const BLOCK = 512;

export type MemberType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

/** A header as stored: `typeflag` is the raw flag, metadata entries (pax, GNU) included. */
export interface RawHeader {
  name: string;
  linkname: string;
  size: number;
  typeflag: string;
}

function readString(block: Buffer, offset: number, length: number): string {
  const end = block.indexOf(0, offset);
  return block.toString('utf8', offset, end < 0 || end > offset + length ? offset + length : end);
}

function readNumber(block: Buffer, offset: number, length: number): number {
  const first = block[offset]!;
  if (first & 0x80) {
    // GNU base-256: big-endian, the top bit of the first byte marks the form.
    let value = first & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + block[offset + i]!;
    return value;
  }
  const text = block
    .toString('ascii', offset, offset + length)
    .replace(/[\0 ]+$/g, '')
    .trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return Number.NaN;
  return Number.parseInt(text, 8);
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

function checksumMatches(block: Buffer): boolean {
  const stored = readNumber(block, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

/** Parses one header block; undefined when it is not a valid tar header. */
export function parseHeader(block: Buffer): RawHeader | undefined {
  if (block.length < BLOCK || !checksumMatches(block)) return undefined;
  const size = readNumber(block, 124, 12);
  if (!Number.isSafeInteger(size) || size < 0) return undefined;
  let name = readString(block, 0, 100);
  // ustar (and GNU's "ustar  ") keep a path prefix at 345.
  if (block.toString('ascii', 257, 262) === 'ustar' && block.toString('ascii', 257, 265) !== 'ustar  \0') {
    const prefix = readString(block, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  const typeflag = String.fromCharCode(block[156]!);
  return { name, linkname: readString(block, 157, 100), size, typeflag: typeflag === '\0' ? '0' : typeflag };
}

/** The records of a pax extended header (`path`, `linkpath`, `size` are the ones used here). */
export function parsePax(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number.parseInt(data.toString('ascii', offset, space), 10);
    if (!Number.isSafeInteger(length) || length <= 0 || offset + length > data.length) break;
    const record = data.toString('utf8', space + 1, offset + length - 1);
    const equals = record.indexOf('=');
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1));
    offset += length;
  }
  return records;
}

export function memberType(typeflag: string): MemberType {
  switch (typeflag) {
    case '0':
    case '7':
      return 'file';
    case '5':
      return 'dir';
    case '2':
      return 'symlink';
    case '1':
      return 'hardlink';
    default:
      return 'other';
  }
}

/** `./a//b/` is `a/b`: the key members are looked up by. */
export function normaliseName(name: string): string {
  const clean = posix.normalize(`/${name}`).replace(/^\/+/, '').replace(/\/+$/, '');
  return clean === '.' ? '' : clean;
}

export function isMetaHeader(typeflag: string): boolean {
  return typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K';
}

/** Pending overrides from pax and GNU metadata entries, applied to the next real entry. */
export class PendingMeta {
  private path: string | undefined;
  private linkpath: string | undefined;
  private size: number | undefined;

  /** Records a metadata entry's data. */
  add(typeflag: string, data: Buffer): void {
    if (typeflag === 'L') this.path = readString(data, 0, data.length);
    else if (typeflag === 'K') this.linkpath = readString(data, 0, data.length);
    else if (typeflag === 'x') {
      const records = parsePax(data);
      const path = records.get('path');
      const linkpath = records.get('linkpath');
      const size = records.get('size');
      if (path !== undefined) this.path = path;
      if (linkpath !== undefined) this.linkpath = linkpath;
      if (size !== undefined && /^\d+$/.test(size)) this.size = Number.parseInt(size, 10);
    }
    // 'g' (global pax) carries nothing an index needs.
  }

  /** Applies and clears the overrides. */
  apply(header: RawHeader): RawHeader {
    const out = {
      ...header,
      name: this.path ?? header.name,
      linkname: this.linkpath ?? header.linkname,
      size: this.size ?? header.size,
    };
    this.path = undefined;
    this.linkpath = undefined;
    this.size = undefined;
    return out;
  }
}

export function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** Metadata entries are small; a huge one means a corrupt archive. */
export const MAX_META_SIZE = 1024 * 1024;

export function archiveError(what: string, message: string, cause?: unknown): BallastError {
  return new BallastError('ARCHIVE_INVALID', `${what} ${message}`, {
    cause,
    hint: 'the file should be a tar written by `docker save` (or `skopeo copy ... docker-archive:`)',
  });
}

/** A member as an index keeps it: where its data starts in the tar and how long it is. */
export interface Member {
  name: string;
  type: MemberType;
  /** Offset of the data in the (uncompressed) tar stream. */
  offset: number;
  size: number;
  linkname: string;
}

/**
 * Follows symlinks (relative to the link's folder, or to the archive's root when absolute) and hard
 * links (named from the root) to a regular member. Docker 25 writes legacy paths as symlinks to blobs/.
 */
export function resolveMember(members: ReadonlyMap<string, Member>, name: string): Member | undefined {
  let current = members.get(normaliseName(name));
  for (let hops = 0; current !== undefined && hops < 16; hops++) {
    if (current.type === 'file') return current;
    if (current.type === 'symlink') {
      const target = current.linkname.startsWith('/')
        ? current.linkname
        : posix.join(posix.dirname(current.name), current.linkname);
      current = members.get(normaliseName(target));
    } else if (current.type === 'hardlink') {
      current = members.get(normaliseName(current.linkname));
    } else {
      return undefined;
    }
  }
  return undefined;
}
