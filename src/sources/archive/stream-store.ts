import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { BallastError } from '../../errors.js';
import type { ArchiveMember, ArchiveStore } from './saved-image.js';
import { archiveError, type Member, resolveMember } from './tar-header.js';
import { scanTar } from './tar-stream.js';

/** Members up to this size are kept from the first pass (configs, manifests, small blobs). */
const KEEP_SMALL = 256 * 1024;
/** JSON members up to this size are kept too (a large config). */
const KEEP_JSON = 16 * 1024 * 1024;
/** What the first pass may hold in memory at most. */
const KEEP_TOTAL = 64 * 1024 * 1024;

/**
 * A tar that can only be read front to back (the daemon's save stream, a gzip-compressed archive).
 * One pass indexes it, keeping the small members and the size, first bytes and sha256 of every member
 * as it goes by; a later read of a big member makes another pass and stops as soon as it has the
 * member. Nothing is written to disk and no layer is held in memory.
 */
export class StreamStore implements ArchiveStore {
  readonly what: string;
  readonly members: ReadonlyMap<string, Member>;
  private readonly openStream: (signal?: AbortSignal) => Promise<Readable>;
  private readonly kept: Map<string, Buffer>;
  private readonly heads: Map<string, Buffer>;
  private readonly digests: Map<string, string>;

  private constructor(
    what: string,
    openStream: (signal?: AbortSignal) => Promise<Readable>,
    scan: {
      members: Map<string, Member>;
      kept: Map<string, Buffer>;
      heads: Map<string, Buffer>;
      digests: Map<string, string>;
    },
  ) {
    this.what = what;
    this.openStream = openStream;
    this.members = scan.members;
    this.kept = scan.kept;
    this.heads = scan.heads;
    this.digests = scan.digests;
  }

  static async scan(
    what: string,
    openStream: (signal?: AbortSignal) => Promise<Readable>,
  ): Promise<StreamStore> {
    const members = new Map<string, Member>();
    const kept = new Map<string, Buffer>();
    const heads = new Map<string, Buffer>();
    const digests = new Map<string, string>();
    let keptBytes = 0;
    const stream = await openStream();
    await scanTar(stream, what, (member) => {
      members.set(member.name, { ...member });
      if (member.type !== 'file') return undefined;
      const keep =
        keptBytes + member.size <= KEEP_TOTAL &&
        (member.size <= KEEP_SMALL || (member.size <= KEEP_JSON && member.name.endsWith('.json')));
      if (keep) keptBytes += member.size;
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      let head = Buffer.alloc(0);
      return {
        data(chunk) {
          hash.update(chunk);
          if (head.length < 8) head = Buffer.concat([head, chunk.subarray(0, 8 - head.length)]);
          if (keep) chunks.push(Buffer.from(chunk));
        },
        end() {
          digests.set(member.name, `sha256:${hash.digest('hex')}`);
          heads.set(member.name, head);
          if (keep) kept.set(member.name, Buffer.concat(chunks));
        },
      };
    });
    return new StreamStore(what, openStream, { members, kept, heads, digests });
  }

  get(name: string): Member | undefined {
    return resolveMember(this.members, name);
  }

  /** The sha256 of a member's bytes, computed in the first pass. */
  digest(member: ArchiveMember): string | undefined {
    return this.digests.get(member.name);
  }

  async read(member: ArchiveMember, limit: number): Promise<Buffer> {
    const kept = this.kept.get(member.name);
    if (kept) return kept;
    if (member.size > limit) {
      throw archiveError(
        this.what,
        `member ${member.name} is ${member.size} bytes, more than the ${limit} expected`,
      );
    }
    const chunks: Buffer[] = [];
    for await (const chunk of await this.open(member)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async head(member: ArchiveMember): Promise<Buffer> {
    return this.heads.get(member.name) ?? Buffer.alloc(0);
  }

  async open(member: ArchiveMember, signal?: AbortSignal): Promise<Readable> {
    const kept = this.kept.get(member.name);
    const out = new PassThrough();
    if (kept) {
      out.end(kept);
      return out;
    }
    const stream = await this.openStream(signal);
    let found = false;
    const pass = scanTar(stream, this.what, (candidate) => {
      if (candidate.name !== member.name) return undefined;
      found = true;
      return {
        async data(chunk) {
          if (out.destroyed) throw new Error('reader went away');
          if (!out.write(chunk)) {
            await new Promise<void>((done) => {
              const finish = () => {
                out.off('drain', finish);
                out.off('close', finish);
                done();
              };
              out.on('drain', finish);
              out.on('close', finish);
            });
          }
        },
        end() {
          out.end();
          return 'stop';
        },
      };
    });
    pass.then(
      () => {
        if (!found) {
          out.destroy(
            new BallastError('ARCHIVE_INVALID', `${this.what} no longer has ${member.name} on a second read`),
          );
        }
      },
      (error: unknown) => {
        if (!out.destroyed) out.destroy(error as Error);
      },
    );
    return out;
  }
}
