/**
 * A streaming tar reader for layer analysis. It parses headers and steps over file bodies by counting
 * bytes through the chunks (bodies are never copied), which keeps decompression + parsing close to the
 * cost of decompression alone. Handles ustar (prefix), pax ('x' and 'g'), GNU long names ('L', 'K'),
 * base-256 numbers, checksum verification, and archives that end without the two zero blocks.
 *
 * Two drivers share one header decoder: `parseTar` over a stream and `parseTarFile` over an
 * uncompressed tar at a range of a file, which reads the headers and seeks over the bodies.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { BallastError } from '../errors.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface TarEntry {
  /** Normalised: no leading `./` or `/`, no `//`, `.` or trailing `/`; `..` resolved. The root is ''. */
  path: string;
  type: EntryType;
  /** The raw type flag character ('0', '5', 'S', ...). */
  typeflag: string;
  /** Bytes of data that follow the header: 0 for links, directories, devices and fifos. */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (fractional with pax). */
  mtime: number;
  uname: string;
  gname: string;
  /** Hardlinks: the normalised target path. Symlinks: the target as written. Otherwise ''. */
  linkname: string;
  /** Offset in the archive of the entry's first header (its pax or GNU long-name header if any). */
  offset: number;
  /** Offset in the archive of the entry's data. */
  dataOffset: number;
  /** The path or hardlink target escapes the root with `..`: report it, never apply it. */
  unsafe: boolean;
  /** The data of a regular file that `wantBody` asked for. */
  body: Buffer | undefined;
}

export type TarIssueCode =
  | 'path-escapes'
  | 'link-escapes'
  | 'absolute-path'
  | 'lone-zero-block'
  | 'no-end-marker'
  | 'missing-padding'
  | 'unknown-type'
  | 'sparse'
  | 'body-too-large'
  | 'dangling-metadata'
  // Raised by the change reader (changes.ts), reported in the same list.
  | 'invalid-whiteout'
  | 'aufs-metadata';

/** Something odd about the archive that does not stop reading it. */
export interface TarIssue {
  code: TarIssueCode;
  message: string;
  /** Offset in the archive. */
  offset: number;
  path?: string;
}

export interface TarReadOptions {
  /**
   * Asked for each regular file (after its header is parsed): true to receive its data as
   * `entry.body`. Keep it cheap; it runs once per file.
   */
  wantBody?: (entry: TarEntry) => boolean;
  /** Larger requested bodies are skipped with a 'body-too-large' issue. Default 64 MiB. */
  maxBodyBytes?: number;
  onIssue?: (issue: TarIssue) => void;
}

export interface TarSummary {
  /** Entries delivered (metadata headers not counted). */
  entries: number;
  /** Bytes of archive seen: the whole stream, or the file range. */
  bytes: number;
  /** Whether the archive ended with zero blocks (umoci-built layers do not). */
  endMarker: boolean;
  /** The first issues (at most 100); `issueCount` counts them all. */
  issues: TarIssue[];
  issueCount: number;
}

const BLOCK = 512;
const MAX_METADATA = 16 * 1024 * 1024;
const MAX_KEPT_ISSUES = 100;
const DEFAULT_MAX_BODY = 64 * 1024 * 1024;

// What follows a header.
const FOLLOW_SKIP = 0;
const FOLLOW_METADATA = 1;
const FOLLOW_BODY = 2;

function invalid(message: string, offset: number): BallastError {
  return new BallastError('LAYER_INVALID', `${message} at byte ${offset} of the tar`);
}

function truncated(what: string, offset: number): BallastError {
  return new BallastError(
    'LAYER_INVALID',
    `truncated tar: the archive ends inside ${what} at byte ${offset}`,
  );
}

/**
 * Normalises an archive path: strips leading `./` and `/`, collapses `//` and `.`, resolves `..`
 * lexically. A path that climbs above the root keeps its leading `..` components.
 */
export function normalisePath(raw: string): string {
  const last = raw.charCodeAt(raw.length - 1);
  if (
    raw.length > 0 &&
    raw.charCodeAt(0) !== 47 &&
    last !== 47 &&
    !(last === 46 && (raw === '.' || raw === '..' || raw.endsWith('/.') || raw.endsWith('/..'))) &&
    raw.indexOf('//') < 0 &&
    raw.indexOf('./') < 0
  ) {
    return raw; // the common case, without allocating
  }
  const out: string[] = [];
  let up = 0;
  for (const segment of raw.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (out.length > 0) out.pop();
      else up++;
      continue;
    }
    out.push(segment);
  }
  if (up === 0) return out.join('/');
  const climb = new Array<string>(up).fill('..');
  return climb.concat(out).join('/');
}

function escapesRoot(path: string): boolean {
  return path === '..' || path.startsWith('../');
}

/** A NUL-terminated string field. */
function cString(buf: Buffer, start: number, length: number): string {
  let end = start;
  const limit = start + length;
  while (end < limit && buf[end] !== 0) end++;
  return end === start ? '' : buf.toString('utf8', start, end);
}

/**
 * A numeric field: octal text (leading spaces, ended by a space or NUL), or base-256 when the first
 * byte has its high bit set (GNU and star use it for sizes of 8 GiB and more, and negative times).
 * Returns -1 when the field is not a number.
 */
function numeric(buf: Buffer, start: number, length: number): number {
  const first = buf[start]!;
  if (first & 0x80) {
    // Big-endian two's complement after the marker bit: 0x80 starts a positive number, 0xff a negative.
    const negative = (first & 0x40) !== 0;
    let value = negative ? ~first & 0x7f : first & 0x7f;
    for (let i = 1; i < length; i++) {
      const byte = buf[start + i]!;
      value = value * 256 + (negative ? 0xff - byte : byte);
    }
    if (!Number.isSafeInteger(value)) return Number.NaN;
    return negative ? -value - 1 : value;
  }
  let i = start;
  const end = start + length;
  while (i < end && buf[i] === 32) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c >= 48 && c <= 55) {
      value = value * 8 + (c - 48);
      digits++;
    } else if (c === 32 || c === 0) {
      break;
    } else {
      return -1;
    }
  }
  return digits === 0 ? 0 : value;
}

/** pax extended header records: "%d %s=%s\n", the length counting the whole record. */
function parsePax(buf: Buffer, offset: number): Map<string, string> {
  const records = new Map<string, string>();
  let i = 0;
  while (i < buf.length) {
    if (buf[i] === 0) break; // some writers pad the block with NULs
    let length = 0;
    let j = i;
    while (j < buf.length && buf[j]! >= 48 && buf[j]! <= 57) {
      length = length * 10 + (buf[j]! - 48);
      j++;
    }
    const end = i + length;
    if (j === i || buf[j] !== 32 || end <= j + 1 || end > buf.length || buf[end - 1] !== 10) {
      throw invalid('malformed pax extended header record', offset);
    }
    const equals = buf.indexOf(61, j + 1);
    if (equals < 0 || equals >= end - 1) throw invalid('malformed pax extended header record', offset);
    records.set(buf.toString('utf8', j + 1, equals), buf.toString('utf8', equals + 1, end - 1));
    i = end;
  }
  return records;
}

/** A number from a pax record; undefined for an absent or empty one (the header field applies). */
function paxNumber(
  value: string | undefined,
  key: string,
  offset: number,
  integer: boolean,
): number | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  const valid = integer ? /^[0-9]+$/.test(value) && Number.isSafeInteger(parsed) : Number.isFinite(parsed);
  if (!valid) throw invalid(`invalid pax ${key} ${JSON.stringify(value)}`, offset);
  return parsed;
}

function typeOf(flag: number): EntryType {
  switch (flag) {
    case 48: // '0'
    case 0: // v7
    case 55: // '7' contiguous
    case 83: // 'S' GNU sparse
      return 'file';
    case 49:
      return 'hardlink';
    case 50:
      return 'symlink';
    case 51:
      return 'char';
    case 52:
      return 'block';
    case 53: // '5'
    case 68: // 'D' GNU dump dir
      return 'dir';
    case 54:
      return 'fifo';
    default:
      return 'other';
  }
}

/** Types whose size field says nothing about data: no body follows them (as Go's archive/tar reads). */
function headerOnly(flag: number): boolean {
  return flag >= 49 && flag <= 54;
}

/**
 * Decodes headers and the metadata between them; the drivers feed it 512-byte blocks and the bodies
 * it asks for, and move past the rest themselves.
 */
class HeaderDecoder {
  readonly issues: TarIssue[] = [];
  issueCount = 0;
  entries = 0;
  ended = false;
  endMarker = false;

  /** Set by block(): what follows it, and how many bytes. */
  follow = FOLLOW_SKIP;
  dataSize = 0;

  private zeroBlocks = 0;
  private metadataFlag = 0;
  private metadataOffset = 0;
  private paxLocal: Map<string, string> | undefined;
  private paxGlobal: Map<string, string> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  private entryStart = -1;
  private waiting: TarEntry | undefined;
  private sparseBlocks = false;
  private sparseData = 0;
  private readonly onEntry: (entry: TarEntry) => void;
  private readonly wantBody: ((entry: TarEntry) => boolean) | undefined;
  private readonly maxBody: number;
  private readonly onIssue: ((issue: TarIssue) => void) | undefined;

  constructor(onEntry: (entry: TarEntry) => void, options: TarReadOptions) {
    this.onEntry = onEntry;
    this.wantBody = options.wantBody;
    this.maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.onIssue = options.onIssue;
  }

  issue(code: TarIssueCode, message: string, offset: number, path?: string): void {
    const issue: TarIssue = path === undefined ? { code, message, offset } : { code, message, offset, path };
    this.issueCount++;
    if (this.issues.length < MAX_KEPT_ISSUES) this.issues.push(issue);
    this.onIssue?.(issue);
  }

  /** Whether a header's metadata (pax, long name) still waits for its entry. */
  get pending(): boolean {
    return this.entryStart >= 0;
  }

  /** The 512-byte block at buf[off] found at archive offset `at`. */
  block(buf: Buffer, off: number, at: number): void {
    this.follow = FOLLOW_SKIP;
    this.dataSize = 0;
    if (this.sparseBlocks) {
      // Old GNU sparse maps continue in extension blocks until one says it is the last.
      if (buf[off + 504] === 0) {
        this.sparseBlocks = false;
        this.dataSize = this.sparseData;
      }
      return;
    }
    let sum = 0;
    for (let i = off, end = off + BLOCK; i < end; i++) sum += buf[i]!;
    if (sum === 0) {
      if (this.entryStart >= 0) {
        this.issue('dangling-metadata', 'a pax or long-name header is followed by the end of archive', at);
        this.clearPending();
      }
      if (++this.zeroBlocks === 2) {
        this.ended = true;
        this.endMarker = true;
      }
      return;
    }
    if (this.zeroBlocks === 1) {
      // GNU tar stops at a lone zero block too; what follows is not part of the archive.
      this.issue('lone-zero-block', 'a single zero block ends the archive; the data after it is ignored', at);
      this.ended = true;
      this.endMarker = true;
      return;
    }
    this.verifyChecksum(buf, off, sum, at);

    const flag = buf[off + 156]!;
    const headerSize = numeric(buf, off + 124, 12);
    if (!(headerSize >= 0)) throw invalid('invalid size field in tar header', at);

    // 'x' and 'L'/'K' describe the next entry, 'g' all later ones.
    if (flag === 120 || flag === 103 || flag === 76 || flag === 75) {
      if (headerSize > MAX_METADATA)
        throw invalid(`a ${headerSize}-byte metadata header is implausibly large`, at);
      if (flag !== 103 && this.entryStart < 0) this.entryStart = at;
      this.metadataFlag = flag;
      this.metadataOffset = at;
      this.follow = FOLLOW_METADATA;
      this.dataSize = headerSize;
      return;
    }

    const local = this.paxLocal;
    const global = this.paxGlobal;
    const pax = (key: string): string | undefined => {
      const value = local?.get(key);
      if (value !== undefined) return value === '' ? undefined : value;
      return global?.get(key);
    };
    const hasPax = local !== undefined || global !== undefined;

    let rawPath: string;
    if (this.longName !== undefined) {
      rawPath = this.longName;
    } else if (hasPax && (pax('GNU.sparse.name') ?? pax('path')) !== undefined) {
      // GNU's pax sparse format 1.0 hides the real name behind GNUSparseFile.N/.
      rawPath = (pax('GNU.sparse.name') ?? pax('path'))!;
    } else {
      rawPath = cString(buf, off, 100);
      // POSIX ustar ("ustar\0") splits long names into prefix + name; GNU keeps other data there.
      if (buf[off + 345] !== 0 && buf[off + 257] === 117 && buf[off + 262] === 0 && buf[off + 261] === 114) {
        rawPath = `${cString(buf, off + 345, 155)}/${rawPath}`;
      }
    }
    let rawLink = this.longLink ?? (hasPax ? pax('linkpath') : undefined) ?? cString(buf, off + 157, 100);

    let size = headerSize;
    let uid = numeric(buf, off + 108, 8);
    let gid = numeric(buf, off + 116, 8);
    let mtime = numeric(buf, off + 136, 12);
    let uname = cString(buf, off + 265, 32);
    let gname = cString(buf, off + 297, 32);
    if (hasPax) {
      size = paxNumber(pax('size'), 'size', at, true) ?? size;
      uid = paxNumber(pax('uid'), 'uid', at, true) ?? uid;
      gid = paxNumber(pax('gid'), 'gid', at, true) ?? gid;
      mtime = paxNumber(pax('mtime'), 'mtime', at, false) ?? mtime;
      uname = pax('uname') ?? uname;
      gname = pax('gname') ?? gname;
      if (pax('GNU.sparse.major') !== undefined || pax('GNU.sparse.map') !== undefined) {
        this.issue('sparse', 'a pax sparse file: its size counts the stored bytes', at, rawPath);
      }
    }

    let type = typeOf(flag);
    if ((flag === 48 || flag === 0) && rawPath.endsWith('/')) type = 'dir'; // old tars mark directories so
    if (type === 'other') {
      this.issue(
        'unknown-type',
        `entry type ${JSON.stringify(String.fromCharCode(flag))} is not a file, link, directory or device`,
        at,
        rawPath,
      );
    }
    const dataSize = headerOnly(flag) ? 0 : size;

    const path = normalisePath(rawPath);
    let unsafe = false;
    if (rawPath.charCodeAt(0) === 47) {
      this.issue('absolute-path', 'an absolute path is read relative to the root', at, rawPath);
    }
    if (escapesRoot(path)) {
      unsafe = true;
      this.issue('path-escapes', `the path ${JSON.stringify(rawPath)} climbs out of the root`, at, rawPath);
    }
    if (type === 'hardlink') {
      rawLink = normalisePath(rawLink);
      if (escapesRoot(rawLink)) {
        unsafe = true;
        this.issue(
          'link-escapes',
          `the hardlink target ${JSON.stringify(rawLink)} is outside the root`,
          at,
          path,
        );
      }
    } else if (type !== 'symlink') {
      rawLink = '';
    }

    const entry: TarEntry = {
      path,
      type,
      typeflag: String.fromCharCode(flag),
      size: dataSize,
      mode: numeric(buf, off + 100, 8) & 0o7777,
      uid,
      gid,
      mtime,
      uname,
      gname,
      linkname: rawLink,
      offset: this.entryStart >= 0 ? this.entryStart : at,
      dataOffset: at + BLOCK,
      unsafe,
      body: undefined,
    };
    this.clearPending();
    this.entries++;

    if (flag === 83) {
      this.issue('sparse', 'an old GNU sparse file: its size counts the stored bytes', at, path);
      if (buf[off + 482] !== 0) {
        this.sparseBlocks = true;
        this.sparseData = dataSize;
        this.onEntry(entry);
        return;
      }
    }
    this.dataSize = dataSize;
    if (type === 'file' && this.wantBody !== undefined && this.wantBody(entry)) {
      if (dataSize <= this.maxBody) {
        this.waiting = entry;
        this.follow = FOLLOW_BODY;
        return;
      }
      this.issue('body-too-large', `${dataSize} bytes is more than the ${this.maxBody} asked for`, at, path);
    }
    this.onEntry(entry);
  }

  /** The data that block() asked for (FOLLOW_METADATA or FOLLOW_BODY). */
  data(body: Buffer): void {
    if (this.follow === FOLLOW_BODY) {
      const entry = this.waiting!;
      this.waiting = undefined;
      entry.body = body;
      this.onEntry(entry);
      return;
    }
    const flag = this.metadataFlag;
    if (flag === 120) {
      this.paxLocal = parsePax(body, this.metadataOffset);
    } else if (flag === 103) {
      const records = parsePax(body, this.metadataOffset);
      const global = this.paxGlobal ?? new Map<string, string>();
      for (const [key, value] of records) {
        if (value === '') global.delete(key);
        else global.set(key, value);
      }
      this.paxGlobal = global;
    } else {
      let end = body.indexOf(0);
      if (end < 0) end = body.length;
      const text = body.toString('utf8', 0, end);
      if (flag === 76) this.longName = text;
      else this.longLink = text;
    }
  }

  private clearPending(): void {
    this.paxLocal = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    this.entryStart = -1;
  }

  private verifyChecksum(buf: Buffer, off: number, sum: number, at: number): void {
    const stored = numeric(buf, off + 148, 8);
    let field = 0;
    for (let i = off + 148; i < off + 156; i++) field += buf[i]!;
    // The checksum is computed with its own field read as eight spaces.
    const computed = sum - field + 8 * 32;
    if (stored === computed) return;
    // Some old tars summed signed bytes.
    let signed = 0;
    for (let i = off; i < off + BLOCK; i++) {
      const byte = buf[i]!;
      signed += i >= off + 148 && i < off + 156 ? 32 : byte > 127 ? byte - 256 : byte;
    }
    if (stored === signed) return;
    const detail = stored < 0 ? 'an unreadable checksum field' : `checksum ${stored}, computed ${computed}`;
    if (at === 0) {
      throw new BallastError(
        'LAYER_INVALID',
        `not a tar archive: the first header does not verify (${detail})`,
      );
    }
    throw invalid(`corrupt tar header (${detail})`, at);
  }
}

function summary(decoder: HeaderDecoder, bytes: number): TarSummary {
  return {
    entries: decoder.entries,
    bytes,
    endMarker: decoder.endMarker,
    issues: decoder.issues,
    issueCount: decoder.issueCount,
  };
}

function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** A push parser: write() chunks of a plain tar in order, then end(). */
export class TarParser {
  private readonly decoder: HeaderDecoder;
  private position = 0;
  /** Bytes still to step over (a body and its padding). */
  private skip = 0;
  /** Where the body being skipped ends; past it only padding remains. */
  private bodyEnd = 0;
  private readonly partial = Buffer.alloc(BLOCK);
  private partialLength = 0;
  private capture: Buffer | undefined;
  private captureLength = 0;
  private capturePadding = 0;
  private finished = false;

  constructor(onEntry: (entry: TarEntry) => void, options: TarReadOptions = {}) {
    this.decoder = new HeaderDecoder(onEntry, options);
  }

  write(chunk: Buffer): void {
    const n = chunk.length;
    const base = this.position;
    this.position += n;
    if (this.decoder.ended) return; // trailing zeros to the record size, or anything after the end
    let i = 0;
    while (i < n) {
      if (this.skip > 0) {
        const step = Math.min(this.skip, n - i);
        this.skip -= step;
        i += step;
        continue;
      }
      if (this.capture !== undefined) {
        const step = Math.min(this.capture.length - this.captureLength, n - i);
        chunk.copy(this.capture, this.captureLength, i, i + step);
        this.captureLength += step;
        i += step;
        if (this.captureLength === this.capture.length) this.captured(base + i);
        continue;
      }
      if (this.partialLength === 0 && n - i >= BLOCK) {
        this.header(chunk, i, base + i);
        i += BLOCK;
      } else {
        const step = Math.min(BLOCK - this.partialLength, n - i);
        chunk.copy(this.partial, this.partialLength, i, i + step);
        this.partialLength += step;
        i += step;
        if (this.partialLength === BLOCK) {
          this.partialLength = 0;
          this.header(this.partial, 0, base + i - BLOCK);
        }
      }
      if (this.decoder.ended) return;
    }
  }

  /** Call at the end of the stream: fails when it ended inside a header or body. */
  end(): TarSummary {
    if (!this.finished) {
      this.finished = true;
      const decoder = this.decoder;
      const at = this.position;
      if (!decoder.ended) {
        if (this.partialLength > 0) throw truncated('a header', at);
        if (this.capture !== undefined) throw truncated('the data of an entry', at);
        if (this.skip > 0) {
          if (at < this.bodyEnd) throw truncated('the data of an entry', at);
          decoder.issue('missing-padding', 'the last entry is not padded to a whole block', at);
        }
        if (decoder.pending) throw truncated('an entry (after its pax or long-name header)', at);
        if (at > 0) decoder.issue('no-end-marker', 'the archive ends without its two zero blocks', at);
      }
    }
    return summary(this.decoder, this.position);
  }

  private header(buf: Buffer, off: number, at: number): void {
    const decoder = this.decoder;
    decoder.block(buf, off, at);
    const size = decoder.dataSize;
    if (decoder.follow === FOLLOW_SKIP) {
      this.skip = size + padding(size);
      this.bodyEnd = at + BLOCK + size;
      return;
    }
    this.capture = Buffer.allocUnsafe(size);
    this.captureLength = 0;
    this.capturePadding = padding(size);
    if (size === 0) this.captured(at + BLOCK);
  }

  private captured(at: number): void {
    const body = this.capture!;
    this.capture = undefined;
    this.skip = this.capturePadding;
    this.bodyEnd = at;
    this.decoder.data(body);
  }
}

/** Parses a plain tar stream, calling `onEntry` for each entry in order. Reads the stream to its end. */
export async function parseTar(
  input: Readable,
  onEntry: (entry: TarEntry) => void,
  options: TarReadOptions = {},
): Promise<TarSummary> {
  const parser = new TarParser(onEntry, options);
  for await (const chunk of input) parser.write(chunk as Buffer);
  return parser.end();
}

/** The entries of a plain tar stream as an async iterator. */
export async function* tarEntries(input: Readable, options: TarReadOptions = {}): AsyncGenerator<TarEntry> {
  const queue: TarEntry[] = [];
  const parser = new TarParser((entry) => queue.push(entry), options);
  for await (const chunk of input) {
    parser.write(chunk as Buffer);
    if (queue.length > 0) {
      const ready = queue.splice(0);
      for (const entry of ready) yield entry;
    }
  }
  parser.end();
}

export interface FileRange {
  /** Where the tar starts in the file. Default 0. */
  offset?: number;
  /** Its length; default to the end of the file. */
  length?: number;
}

/** Reads what it can near a header so that the headers of small files come in one read. */
const WINDOW = 64 * 1024;
/** After skipping a large body the next header is alone: read a small window there. */
const SMALL_WINDOW = 4 * 1024;

/**
 * Synchronous reads: a layer's headers are tens of thousands of small reads from the page cache,
 * and a round trip through the thread pool for each costs more than the read itself.
 */
function readFully(fd: number, into: Buffer, start: number, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const bytesRead = readSync(fd, into, start + done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * Parses an uncompressed tar stored at a range of a file (a `layer.tar` inside a `docker save`
 * archive): reads the headers at their offsets and seeks over the bodies. The same entries as
 * `parseTar`, without reading the file data (so nothing here verifies a digest).
 */
export async function parseTarFile(
  path: string,
  range: FileRange,
  onEntry: (entry: TarEntry) => void,
  options: TarReadOptions = {},
): Promise<TarSummary> {
  const decoder = new HeaderDecoder(onEntry, options);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new BallastError('IO', `cannot open ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const start = range.offset ?? 0;
    const fileSize = fstatSync(fd).size;
    const length = range.length ?? fileSize - start;
    const end = start + length;
    if (start < 0 || end > fileSize) {
      throw new BallastError(
        'LAYER_INVALID',
        `the tar at bytes ${start}-${end} of ${path} lies beyond the file's ${fileSize} bytes`,
      );
    }
    const window = Buffer.allocUnsafe(WINDOW);
    let windowStart = 0;
    let windowLength = 0;
    let position = start;
    let lastSkip = 0;
    while (!decoder.ended && position < end) {
      if (end - position < BLOCK) throw truncated('a header', length);
      if (position < windowStart || position + BLOCK > windowStart + windowLength) {
        windowStart = position;
        const size = lastSkip > WINDOW ? SMALL_WINDOW : WINDOW;
        windowLength = readFully(fd, window, 0, Math.min(size, end - position), position);
        if (windowLength < BLOCK) throw truncated('a header', position - start + windowLength);
      }
      const at = position - start;
      decoder.block(window, position - windowStart, at);
      const size = decoder.dataSize;
      const dataStart = position + BLOCK;
      if (dataStart + size > end) throw truncated('the data of an entry', length);
      if (decoder.follow !== FOLLOW_SKIP) {
        let body: Buffer;
        if (dataStart + size <= windowStart + windowLength) {
          // Copy: the window is reused by the next read.
          body = Buffer.from(window.subarray(dataStart - windowStart, dataStart - windowStart + size));
        } else {
          body = Buffer.allocUnsafe(size);
          if (readFully(fd, body, 0, size, dataStart) < size) {
            throw truncated('the data of an entry', length);
          }
        }
        decoder.data(body);
      }
      lastSkip = size;
      position = dataStart + size + padding(size);
      if (position > end) {
        decoder.issue('missing-padding', 'the last entry is not padded to a whole block', length);
        position = end;
      }
    }
    if (!decoder.ended) {
      if (decoder.pending) throw truncated('an entry (after its pax or long-name header)', length);
      if (length > 0) decoder.issue('no-end-marker', 'the archive ends without its two zero blocks', length);
    }
    return summary(decoder, length);
  } finally {
    closeSync(fd);
  }
}
