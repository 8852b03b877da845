import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { BallastError } from '../../errors.js';
import {
  archiveError,
  BLOCK,
  isMetaHeader,
  isZeroBlock,
  MAX_META_SIZE,
  type Member,
  memberType,
  normaliseName,
  PendingMeta,
  padding,
  parseHeader,
  resolveMember,
} from './tar-header.js';

/**
 * An index of a tar file built by reading its headers only: each body is skipped with a seek, so
 * indexing a multi-GB `docker save` costs a few reads per member.
 */
export class TarIndex {
  readonly path: string;
  readonly members: ReadonlyMap<string, Member>;
  private readonly handle: FileHandle;

  private constructor(path: string, handle: FileHandle, members: Map<string, Member>) {
    this.path = path;
    this.handle = handle;
    this.members = members;
  }

  /** Opens and indexes `path`. A file that is not a tar, or is cut short, is ARCHIVE_INVALID. */
  static async open(path: string): Promise<TarIndex> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT')
        throw new BallastError('NOT_FOUND', `archive ${path} does not exist`, { cause: error });
      if (code === 'EISDIR') {
        throw new BallastError('ARCHIVE_INVALID', `${path} is a directory, not a docker save archive`, {
          hint: 'an OCI layout folder is read with oci:PATH',
        });
      }
      throw new BallastError('IO', `cannot open archive ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    try {
      const members = await indexFile(path, handle);
      return new TarIndex(path, handle, members);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** The regular member at `name`, following symlinks and hard links. */
  get(name: string): Member | undefined {
    return resolveMember(this.members, name);
  }

  /** Reads a small member whole. */
  async read(member: Member, limit: number): Promise<Buffer> {
    if (member.size > limit) {
      throw archiveError(
        this.path,
        `member ${member.name} is ${member.size} bytes, more than the ${limit} expected`,
      );
    }
    const buffer = Buffer.alloc(member.size);
    let done = 0;
    while (done < member.size) {
      const { bytesRead } = await this.handle.read(buffer, done, member.size - done, member.offset + done);
      if (bytesRead === 0) throw archiveError(this.path, `is truncated inside ${member.name}`);
      done += bytesRead;
    }
    return buffer;
  }

  /** The first bytes of a member (to sniff compression). */
  async head(member: Member, length: number): Promise<Buffer> {
    const buffer = Buffer.alloc(Math.min(length, member.size));
    if (buffer.length === 0) return buffer;
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, member.offset);
    return buffer.subarray(0, bytesRead);
  }

  /** A member's bytes as a stream; its own file descriptor, so several can run at once. */
  stream(member: Member): Readable {
    if (member.size === 0) return createReadStream(this.path, { start: 1, end: 0 });
    return createReadStream(this.path, { start: member.offset, end: member.offset + member.size - 1 });
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

async function indexFile(path: string, handle: FileHandle): Promise<Map<string, Member>> {
  const { size: fileSize } = await handle.stat();
  const members = new Map<string, Member>();
  const block = Buffer.alloc(BLOCK);
  const pending = new PendingMeta();
  let offset = 0;
  let entries = 0;
  for (;;) {
    if (offset === fileSize) break; // No end blocks: Go's archive/tar (and docker) accept that too.
    const { bytesRead } = await handle.read(block, 0, BLOCK, offset);
    if (bytesRead < BLOCK) {
      throw archiveError(
        path,
        entries === 0
          ? `is not a tar archive (${bytesRead > 0 ? `${describeStart(block.subarray(0, bytesRead))}, ` : ''}shorter than one tar header)`
          : 'is truncated (it ends inside a header)',
      );
    }
    if (isZeroBlock(block)) break;
    const header = parseHeader(block);
    if (header === undefined) {
      if (entries === 0) throw archiveError(path, `is not a tar archive (${describeStart(block)})`);
      throw archiveError(path, `is corrupt: no valid tar header at offset ${offset}`);
    }
    entries++;
    const dataOffset = offset + BLOCK;
    let size = header.size;
    if (isMetaHeader(header.typeflag)) {
      if (size > MAX_META_SIZE) throw archiveError(path, `has a ${size}-byte metadata entry`);
      if (dataOffset + size > fileSize) throw archiveError(path, 'is truncated (it ends inside a header)');
      const data = Buffer.alloc(size);
      await handle.read(data, 0, size, dataOffset);
      pending.add(header.typeflag, data);
    } else {
      const real = pending.apply(header);
      size = real.size;
      if (dataOffset + size > fileSize) {
        throw archiveError(
          path,
          `is truncated: member ${real.name} needs ${dataOffset + size - fileSize} bytes past the end of the file`,
        );
      }
      const name = normaliseName(real.name);
      const type = memberType(real.typeflag);
      members.set(name, {
        name,
        type,
        offset: dataOffset,
        size: type === 'file' ? size : 0,
        linkname: real.linkname,
      });
    }
    offset = dataOffset + size + padding(size);
  }
  return members;
}

/** Says what the file looks like instead, for the one-line error. */
export function describeStart(bytes: Buffer): string {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'it is gzip-compressed';
  if (bytes.length >= 4 && bytes.readUInt32LE(0) === 0xfd2fb528) return 'it is zstd-compressed';
  const text = bytes.toString('utf8', 0, Math.min(bytes.length, 32));
  if (/^\s*[[{]/.test(text)) return 'it looks like JSON';
  return bytes.length >= BLOCK ? 'no valid tar header at offset 0' : 'not a tar header';
}
