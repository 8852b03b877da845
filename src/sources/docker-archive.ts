import { createReadStream } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { addAbortSignal, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BallastError } from '../errors.js';
import type { Descriptor } from '../image/digest.js';
import { type ImageReference, repositoryName } from '../reference/parse.js';
import { type ArchiveMember, type ArchiveStore, pipeInto, SavedImage } from './archive/saved-image.js';
import { StreamStore } from './archive/stream-store.js';
import type { Member } from './archive/tar-header.js';
import { TarIndex } from './archive/tar-index.js';
import type { BlobOptions, ImageSource, SourceOptions, StoredManifest } from './types.js';

/** A seekable tar file: members are read at their offsets. */
class FileStore implements ArchiveStore {
  readonly what: string;
  readonly index: TarIndex;

  constructor(index: TarIndex) {
    this.index = index;
    this.what = `archive ${index.path}`;
  }

  get(name: string): Member | undefined {
    return this.index.get(name);
  }

  read(member: ArchiveMember, limit: number): Promise<Buffer> {
    return this.index.read(member as Member, limit);
  }

  head(member: ArchiveMember, length: number): Promise<Buffer> {
    return this.index.head(member as Member, length);
  }

  async open(member: ArchiveMember, signal?: AbortSignal): Promise<Readable> {
    const stream = this.index.stream(member as Member);
    // Unlike a bare listener, this one is removed when the stream closes.
    if (signal) addAbortSignal(signal, stream);
    return stream;
  }

  fileRange(member: ArchiveMember): { path: string; offset: number; length: number } {
    const m = member as Member;
    return { path: this.index.path, offset: m.offset, length: m.size };
  }
}

async function startsWithGzip(path: string): Promise<boolean> {
  const handle = await openFile(path, 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT')
      throw new BallastError('NOT_FOUND', `archive ${path} does not exist`, { cause: error });
    if (error.code === 'EISDIR') return undefined;
    throw new BallastError('IO', `cannot open archive ${path}: ${error.message}`, { cause: error });
  });
  if (handle === undefined) return false;
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/**
 * `docker-archive:PATH[:NAME:TAG]`: a `docker save` tar, legacy or Docker 25's OCI layout inside. The
 * tar is indexed once by its headers; a gzip-compressed archive (`docker save | gzip`) is read in
 * streaming passes instead, as it cannot be seeked.
 */
export class DockerArchiveSource implements ImageSource {
  readonly reference: ImageReference;
  readonly name: string;
  /** skopeo's `Name`: the repository of NAME:TAG when given, else none. */
  readonly dockerReference: string | undefined;
  private readonly image: SavedImage;
  private readonly index: TarIndex | undefined;

  private constructor(reference: ImageReference, image: SavedImage, index: TarIndex | undefined) {
    this.reference = reference;
    this.image = image;
    this.index = index;
    const name = reference.transport === 'docker-archive' ? reference.name : undefined;
    this.dockerReference = name ? repositoryName(name) : undefined;
    this.name =
      this.dockerReference ??
      `docker-archive:${reference.transport === 'docker-archive' ? reference.path : ''}`;
  }

  static async open(ref: ImageReference, _options: SourceOptions = {}): Promise<DockerArchiveSource> {
    if (ref.transport !== 'docker-archive') {
      throw new BallastError('USAGE', `DockerArchiveSource cannot open ${ref.transport}: references`);
    }
    if (await startsWithGzip(ref.path)) {
      const store = await StreamStore.scan(`archive ${ref.path}`, async () =>
        pipeInto(createReadStream(ref.path), createGunzip()),
      );
      return new DockerArchiveSource(ref, await SavedImage.load(store, ref.name), undefined);
    }
    const index = await TarIndex.open(ref.path);
    try {
      return new DockerArchiveSource(ref, await SavedImage.load(new FileStore(index), ref.name), index);
    } catch (error) {
      await index.close();
      throw error;
    }
  }

  /** The RepoTags of the chosen image as the archive lists them. */
  get repoTags(): string[] {
    return [...this.image.repoTags];
  }

  getManifest(digest?: string): Promise<StoredManifest> {
    return this.image.getManifest(digest);
  }

  getBlob(
    descriptor: Pick<Descriptor, 'digest' | 'size'> & Partial<Descriptor>,
    options?: BlobOptions,
  ): Promise<Readable> {
    return this.image.getBlob(descriptor, options);
  }

  /**
   * Where an uncompressed layer's bytes sit in the archive file, so a tar reader can seek instead of
   * stream. Undefined for compressed layers and compressed archives.
   */
  layerFileRange(diffId: string): Promise<{ path: string; offset: number; length: number } | undefined> {
    return this.image.layerFileRange(diffId);
  }

  async close(): Promise<void> {
    await this.index?.close();
  }
}
