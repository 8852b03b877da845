/**
 * Writes a `docker save` style tar (`docker-archive:PATH[:NAME:TAG]`) in the legacy layout that every
 * `docker load` reads: `manifest.json` (Config, RepoTags, Layers), the config as `<hex>.json`, each
 * layer as `<hex>/layer.tar`, and `repositories`. The tar is streamed to a temp file next to PATH and
 * renamed over it at commit, so PATH is either the old file or the whole new archive.
 *
 * Layers are stored as they come (gzip stays gzip), as `docker load` sniffs and decompresses each layer
 * file itself: a tar entry needs its size before its bytes, and only the stored size is known up front
 * (decompressing would mean a temp copy of every layer). zstd layers are refused: docker before 23
 * cannot load them.
 */

import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { BallastError } from '../errors.js';
import { VerifyingStream } from '../image/digest.js';
import { parseManifest } from '../image/manifest.js';
import { MediaType } from '../image/media-types.js';
import { DOCKER_HUB, type DockerName, describeReference, type ImageReference } from '../reference/parse.js';
import { ioError, syncDir, tempName, writeVerified } from './fs-atomic.js';
import type {
  BlobDescriptor,
  DestinationOptions,
  ImageDestination,
  PutBlobOptions,
  PutManifestOptions,
} from './types.js';

const CONFIG_TYPES = new Set<string>([MediaType.dockerConfig, MediaType.ociConfig]);
const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** A ustar header for a regular file; sizes of 8 GiB and more use GNU base-256. */
export function tarHeader(name: string, size: number, mtime = 0): Buffer {
  if (Buffer.byteLength(name) > 100) throw new BallastError('IO', `tar entry name too long: ${name}`);
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  block.write(octal(0o644, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  if (size < 8 ** 11) block.write(octal(size, 12), 124, 'ascii');
  else {
    block[124] = 0x80;
    block.writeUIntBE(size, 124 + 12 - 6, 6);
  }
  block.write(octal(mtime, 12), 136, 'ascii');
  block.write(' '.repeat(8), 148, 'ascii');
  block.write('0', 156, 'ascii');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return block;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** `foo:1` for `docker.io/library/foo:1`, `me/foo:1` on Docker Hub, the full name elsewhere: docker's form. */
export function familiarName(name: DockerName, tag?: string): string {
  let repository = `${name.registry}/${name.repository}`;
  if (name.registry === DOCKER_HUB) {
    repository = name.repository.startsWith('library/') ? name.repository.slice(8) : name.repository;
  }
  return `${repository}:${tag ?? name.tag ?? 'latest'}`;
}

function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export class DockerArchiveDestination implements ImageDestination {
  readonly reference: ImageReference;
  readonly name: string;
  // The manifest itself is not stored: docker load reads manifest.json and the config.
  readonly supportedManifestTypes: readonly string[] = [MediaType.dockerManifest, MediaType.ociManifest];
  readonly storesManifests = false;
  readonly maxConcurrentBlobs = 1;
  readonly path: string;
  private readonly dockerName: DockerName | undefined;
  private readonly repoTags: string[] | undefined;
  private readonly temp: string;
  private handle: FileHandle | undefined;
  /** digest -> path inside the tar. */
  private readonly written = new Map<string, string>();
  private queue: Promise<unknown> = Promise.resolve();
  private broken: unknown;
  private entries: { Config: string; RepoTags: string[]; Layers: string[] } | undefined;

  private constructor(
    ref: Extract<ImageReference, { transport: 'docker-archive' }>,
    options: DestinationOptions,
  ) {
    this.reference = ref;
    this.name = describeReference(ref);
    this.path = ref.path;
    this.dockerName = ref.name;
    this.repoTags = options.repoTags;
    this.temp = join(dirname(ref.path), tempName());
  }

  static async open(
    ref: ImageReference,
    options: DestinationOptions = {},
  ): Promise<DockerArchiveDestination> {
    if (ref.transport !== 'docker-archive') {
      throw new BallastError('USAGE', `${ref.input} is not a docker-archive reference`, { exitCode: 2 });
    }
    const destination = new DockerArchiveDestination(ref, options);
    const existing = await stat(ref.path).catch(() => undefined);
    if (existing?.isDirectory()) {
      throw new BallastError('USAGE', `${ref.path} is a folder; docker-archive:PATH names a tar file`, {
        exitCode: 2,
      });
    }
    try {
      await mkdir(dirname(ref.path), { recursive: true });
      destination.handle = await open(destination.temp, 'wx');
    } catch (error) {
      throw ioError(error, `creating ${ref.path}`);
    }
    return destination;
  }

  accepts(mediaType: string): boolean {
    return this.supportedManifestTypes.includes(mediaType);
  }

  async hasBlob(descriptor: BlobDescriptor): Promise<boolean> {
    return this.written.has(descriptor.digest);
  }

  /** Tar entries go one after another: each write waits for the previous one. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private async write(bytes: Buffer): Promise<void> {
    if (this.handle === undefined) throw new BallastError('IO', `${this.path} is already closed`);
    if (bytes.length > 0) await this.handle.write(bytes);
  }

  private async writeEntry(name: string, bytes: Buffer): Promise<void> {
    await this.write(tarHeader(name, bytes.length));
    await this.write(bytes);
    await this.write(padding(bytes.length));
  }

  putBlob(descriptor: BlobDescriptor, stream: Readable, options: PutBlobOptions = {}): Promise<void> {
    return this.serial(async () => {
      if (this.broken !== undefined) throw this.broken;
      const mediaType = descriptor.mediaType ?? '';
      if (mediaType.includes('zstd')) {
        stream.destroy();
        throw new BallastError(
          'MEDIA_TYPE_UNSUPPORTED',
          `layer ${descriptor.digest} is zstd-compressed, which docker load (before docker 23) cannot read`,
          { hint: 'copy the image to a registry or an OCI layout instead' },
        );
      }
      const name = CONFIG_TYPES.has(mediaType)
        ? `${hexOf(descriptor.digest)}.json`
        : `${hexOf(descriptor.digest)}/layer.tar`;
      try {
        await this.write(tarHeader(name, descriptor.size));
        const verifier = new VerifyingStream(descriptor, `blob ${descriptor.digest}`);
        await writeVerified(stream, verifier, this.handle!, {
          signal: options.signal,
          onChunk: () => options.onProgress?.({ bytes: verifier.bytes, total: descriptor.size }),
        });
        await this.write(padding(descriptor.size));
      } catch (error) {
        // Part of an entry is in the tar: this archive can only be thrown away.
        this.broken = ioError(error, `writing ${descriptor.digest} to ${this.path}`);
        throw this.broken;
      }
      this.written.set(descriptor.digest, name);
    });
  }

  async putManifest(
    bytes: Buffer,
    mediaType: string,
    digest: string,
    options: PutManifestOptions,
  ): Promise<void> {
    if (!options.topLevel) return;
    const manifest = parseManifest(bytes, mediaType, `manifest ${digest}`);
    if (manifest.kind !== 'manifest') {
      throw new BallastError('MEDIA_TYPE_UNSUPPORTED', `a docker archive holds one image, not ${mediaType}`, {
        hint: 'choose one image with --platform',
      });
    }
    const path = (digest: string) => {
      const entry = this.written.get(digest);
      if (entry === undefined) throw new BallastError('IO', `blob ${digest} was not written to ${this.path}`);
      return entry;
    };
    let repoTags = this.repoTags ?? [];
    if (this.dockerName !== undefined) repoTags = [familiarName(this.dockerName, options.tag)];
    this.entries = {
      Config: path(manifest.config.digest),
      RepoTags: repoTags,
      Layers: manifest.layers.map((layer) => path(layer.digest)),
    };
  }

  commit(): Promise<void> {
    return this.serial(async () => {
      if (this.broken !== undefined) throw this.broken;
      const entries = this.entries;
      if (entries === undefined) throw new BallastError('IO', `no image was written to ${this.path}`);
      try {
        await this.writeEntry('manifest.json', Buffer.from(JSON.stringify([entries])));
        const top = entries.Layers[entries.Layers.length - 1];
        if (entries.RepoTags.length > 0 && top !== undefined) {
          // Old loaders read `repositories`: repository -> tag -> the top layer's folder.
          const repositories: Record<string, Record<string, string>> = {};
          for (const repoTag of entries.RepoTags) {
            const colon = repoTag.lastIndexOf(':');
            const repository = repoTag.slice(0, colon);
            repositories[repository] ??= {};
            repositories[repository][repoTag.slice(colon + 1)] = dirname(top);
          }
          await this.writeEntry('repositories', Buffer.from(JSON.stringify(repositories)));
        }
        await this.write(Buffer.alloc(BLOCK * 2));
        const handle = this.handle!;
        await handle.sync();
        await handle.close();
        this.handle = undefined;
        await rename(this.temp, this.path);
        await syncDir(dirname(this.path));
      } catch (error) {
        this.broken = ioError(error, `writing ${this.path}`);
        throw this.broken;
      }
    });
  }

  async abort(): Promise<void> {
    await this.queue;
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
    await rm(this.temp, { force: true }).catch(() => {});
  }

  async close(): Promise<void> {
    await this.abort();
  }
}
