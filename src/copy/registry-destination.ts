/**
 * A registry as a copy destination: blobs by HEAD, cross-repository mount or upload (streamed,
 * verified as the bytes pass), then manifests, children by digest and the top level to the tag.
 * There is nothing to commit: the top-level manifest, written last, is what makes the image visible.
 */
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { BallastError } from '../errors.js';
import { VerifyingStream } from '../image/digest.js';
import { MediaType } from '../image/media-types.js';
import { describeReference, type ImageReference } from '../reference/parse.js';
import { RegistryClient, type RegistryClientOptions, type UploadSession } from '../registry/client.js';
import type { ImageSource } from '../sources/types.js';
import type {
  BlobDescriptor,
  DestinationOptions,
  ImageDestination,
  PutBlobOptions,
  PutManifestOptions,
} from './types.js';

type DockerReference = Extract<ImageReference, { transport: 'docker' }>;

export interface RegistryDestinationOptions extends DestinationOptions {
  /** Knobs of the registry client beyond `registry` (retry timing, the environment), mostly for tests. */
  client?: Omit<RegistryClientOptions, 'creds' | 'authFile' | 'insecure' | 'caFile' | 'onWarning'>;
  /** Blobs larger than this are sent in chunks (512 MiB). */
  chunkThreshold?: number;
  /** Bytes per chunk (8 MiB). */
  chunkSize?: number;
  /** Always chunked (true) or always monolithic unless the registry asks for chunks (false). */
  chunked?: boolean;
}

/** The engine passes `reopen`; without it the blob is read again from the source seen by mountBlob. */
export type RegistryPutBlobOptions = PutBlobOptions;

const ACTIONS = ['pull', 'push'] as const;

/**
 * Holds back the last chunk until the stream before it ends, so that a verifier in front of it fails
 * before the final byte reaches the registry: a monolithic PUT then never completes its declared
 * length, and the upload is not committed.
 */
class HoldLast extends Transform {
  private held: Buffer | undefined;
  bytes = 0;
  constructor(private readonly onBytes: ((bytes: number) => void) | undefined) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const previous = this.held;
    this.held = chunk;
    if (previous !== undefined) this.emitChunk(previous);
    callback();
  }
  override _flush(callback: TransformCallback): void {
    if (this.held !== undefined) this.emitChunk(this.held);
    this.held = undefined;
    callback();
  }
  private emitChunk(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    this.push(chunk);
  }
}

export class RegistryDestination implements ImageDestination {
  readonly reference: ImageReference;
  readonly name: string;
  /** Registries store Docker and OCI manifests and indexes alike. */
  readonly supportedManifestTypes: readonly string[] = [
    MediaType.dockerManifest,
    MediaType.dockerManifestList,
    MediaType.ociManifest,
    MediaType.ociIndex,
  ];
  readonly storesManifests = true;
  readonly client: RegistryClient;
  private readonly ref: DockerReference;
  private readonly options: RegistryDestinationOptions;
  /** Upload sessions from mounts that were answered 202, used by the putBlob that follows. */
  private readonly sessions = new Map<string, UploadSession>();
  /** The source of each blob seen by mountBlob, to read it again if an upload must start over. */
  private readonly sources = new Map<string, ImageSource>();
  /** Blobs mounted (for tests and summaries). */
  mounted = 0;

  private constructor(ref: DockerReference, client: RegistryClient, options: RegistryDestinationOptions) {
    this.reference = ref;
    this.ref = ref;
    this.client = client;
    this.options = options;
    this.name = describeReference(ref);
  }

  static async open(
    ref: ImageReference,
    options: RegistryDestinationOptions = {},
  ): Promise<RegistryDestination> {
    if (ref.transport !== 'docker') {
      throw new BallastError('USAGE', `${ref.input} is not a registry reference`, { exitCode: 2 });
    }
    const registry = options.registry ?? {};
    const client = new RegistryClient(ref.registry, {
      ...options.client,
      creds: registry.creds,
      authFile: registry.authFile,
      insecure: registry.insecure,
      caFile: registry.caFile,
      onWarning: registry.onWarning,
    });
    return new RegistryDestination(ref, client, options);
  }

  private get repository(): string {
    return this.ref.repository;
  }

  accepts(mediaType: string): boolean {
    return this.supportedManifestTypes.includes(mediaType);
  }

  hasBlob(descriptor: BlobDescriptor): Promise<boolean> {
    return this.client.hasBlob(this.repository, descriptor.digest, { actions: ACTIONS });
  }

  /**
   * Mounts from the source repository when the source is on the same registry. A 202 leaves an upload
   * session that putBlob then uses, so a failed mount costs no extra request.
   */
  async mountBlob(descriptor: BlobDescriptor, from: ImageSource): Promise<boolean> {
    this.sources.set(descriptor.digest, from);
    const source = from.reference;
    if (source.transport !== 'docker' || source.registry !== this.ref.registry) return false;
    if (source.repository === this.repository) return false;
    let result: Awaited<ReturnType<RegistryClient['mountBlob']>>;
    try {
      result = await this.client.mountBlob(this.repository, descriptor.digest, source.repository);
    } catch (error) {
      // A registry without mounts (or one refusing this one) still takes an upload; auth errors do not heal.
      if (BallastError.is(error) && (error.code === 'AUTH_FAILED' || error.code === 'DENIED')) throw error;
      return false;
    }
    if (result.mounted) {
      this.sources.delete(descriptor.digest);
      this.mounted++;
      return true;
    }
    this.sessions.set(descriptor.digest, result.session);
    return false;
  }

  async putBlob(
    descriptor: BlobDescriptor,
    stream: Readable,
    options: RegistryPutBlobOptions = {},
  ): Promise<void> {
    const { digest, size } = descriptor;
    const session = this.sessions.get(digest);
    this.sessions.delete(digest);
    const source = this.sources.get(digest);
    this.sources.delete(digest);
    const opened: Readable[] = [];
    const chains: Readable[] = [];
    const onProgress = options.onProgress;
    // source -> verifier -> hold-last -> request: bytes are checked as they pass, and a mismatch
    // stops the upload before its last byte.
    // A stream the caller has verified already (a source's blob) is not hashed twice: holding its last
    // chunk until it ends cleanly is enough, as a mismatch fails it before its end.
    const chain = (input: Readable): HoldLast => {
      const hold = new HoldLast(onProgress && ((bytes) => onProgress({ bytes, total: size })));
      // The upload reads the error from the stream itself (destroyed, errored); between attempts no
      // one listens.
      hold.on('error', () => {});
      let checked: Readable = input;
      if (!options.verified) {
        const verifier = new VerifyingStream({ digest, size }, `blob ${digest} for ${this.name}`);
        input.on('error', (error) => verifier.destroy(error));
        checked = input.pipe(verifier);
      }
      checked.on('error', (error) => hold.destroy(error));
      checked.pipe(hold);
      chains.push(hold);
      return hold;
    };
    const reopenSource =
      options.reopen ??
      (source === undefined
        ? undefined
        : () => source.getBlob(descriptor, options.signal ? { signal: options.signal } : {}));
    const reopen =
      reopenSource &&
      (async () => {
        const fresh = await reopenSource();
        opened.push(fresh);
        return chain(fresh);
      });
    try {
      await this.client.uploadBlob(this.repository, descriptor, chain(stream), {
        session,
        reopen,
        chunked: this.options.chunked,
        chunkThreshold: this.options.chunkThreshold,
        chunkSize: this.options.chunkSize,
        signal: options.signal,
      });
    } finally {
      stream.unpipe();
      for (const hold of chains) if (!hold.destroyed) hold.destroy();
      for (const fresh of opened) if (!fresh.destroyed) fresh.destroy();
    }
  }

  /** The tag a top-level manifest goes to: the option, the reference's tag, else its digest or `latest`. */
  private topReference(digest: string, tag: string | undefined): string {
    if (tag !== undefined) return tag;
    if (this.ref.tag !== undefined) return this.ref.tag;
    if (this.ref.digest !== undefined) {
      if (this.ref.digest !== digest) {
        throw new BallastError(
          'DIGEST_MISMATCH',
          `${this.name} names the digest ${this.ref.digest}, but the manifest to write is ${digest}`,
          { hint: 'name the destination by tag, or drop the digest' },
        );
      }
      return digest;
    }
    return 'latest';
  }

  async putManifest(
    bytes: Buffer,
    mediaType: string,
    digest: string,
    options: PutManifestOptions,
  ): Promise<void> {
    const reference = options.topLevel ? this.topReference(digest, options.tag) : digest;
    await this.client.putManifest(this.repository, reference, bytes, mediaType, digest);
  }

  /** By HEAD (Docker Hub does not count it as a pull); a GET only when HEAD gives no digest. */
  async manifestDigest(tag?: string): Promise<string | undefined> {
    const reference = tag ?? this.ref.tag ?? this.ref.digest ?? 'latest';
    const head = await this.client.headManifest(this.repository, reference, { actions: ACTIONS });
    if (head === undefined) return undefined;
    if (head.digest !== undefined) return head.digest;
    return (await this.client.getManifest(this.repository, reference)).digest;
  }

  async commit(): Promise<void> {
    // The top-level manifest was written last: the image is already visible, and whole.
  }

  async abort(): Promise<void> {
    const open = [...this.sessions.values()];
    this.sessions.clear();
    this.sources.clear();
    await Promise.all(open.map((session) => this.client.cancelUpload(session)));
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
