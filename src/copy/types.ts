import type { Readable } from 'node:stream';
import type { Descriptor } from '../image/digest.js';
import type { ImageReference } from '../reference/parse.js';
import type { BlobProgress, ImageSource, SourceOptions } from '../sources/types.js';

/** The part of a descriptor a destination needs to store a blob. */
export type BlobDescriptor = Pick<Descriptor, 'digest' | 'size'> & Partial<Descriptor>;

export interface PutBlobOptions {
  /** Bytes written so far, for progress. */
  onProgress?: (progress: BlobProgress) => void;
  signal?: AbortSignal;
  /**
   * A new stream of the same blob from its first byte, for an upload that must start over after part
   * of the stream was sent (a connection dropped mid-PUT).
   */
  reopen?: () => Promise<Readable>;
  /**
   * The stream (and any reopened one) fails before its end when its bytes do not match the
   * descriptor, as an ImageSource's blobs do: the destination need not hash it again.
   */
  verified?: boolean;
}

export interface PutManifestOptions {
  /**
   * The manifest the destination's name points at (the last one written). Children of an index are
   * written first with `topLevel: false` and stored by digest only.
   */
  topLevel: boolean;
  /** The tag to point at the manifest; the destination reference's own tag when absent. */
  tag?: string;
}

/**
 * One place an image can be written (the go-containerregistry shape: a copy reads from an
 * `ImageSource` and writes to an `ImageDestination`). Blobs first, then child manifests, then the
 * top-level manifest, then `commit()`: a name never points at an incomplete image.
 */
export interface ImageDestination {
  readonly reference: ImageReference;
  /** The name to show in messages. */
  readonly name: string;
  /** Manifest media types stored as they are; any other needs a conversion (or cannot be stored). */
  readonly supportedManifestTypes: readonly string[];
  /**
   * How many blobs may be written at once; 1 for a destination that is one sequential stream
   * (a tar archive). The copy uses min(jobs, this).
   */
  readonly maxConcurrentBlobs?: number;
  /**
   * False for a destination that keeps no manifest (a `docker save` archive keeps the config and
   * layers only): digests cannot be preserved there, and no conversion is needed either.
   */
  readonly storesManifests?: boolean;
  /** True for a destination that takes blob locks itself (a fan-out to several destinations). */
  readonly locksBlobs?: boolean;

  accepts(mediaType: string): boolean;

  /** Whether the destination already has the blob (a HEAD): true means the copy skips it. */
  hasBlob(descriptor: BlobDescriptor): Promise<boolean>;

  /**
   * Makes a blob available without sending it (a cross-repository mount on one registry). True when
   * it worked; false means the blob must be sent.
   */
  mountBlob?(descriptor: BlobDescriptor, from: ImageSource): Promise<boolean>;

  /**
   * Stores a blob from a stream, verifying its digest and size as the bytes pass; never holds the
   * whole blob in memory. A mismatch rejects and leaves nothing behind under the blob's name.
   */
  putBlob(descriptor: BlobDescriptor, stream: Readable, options?: PutBlobOptions): Promise<void>;

  /** Stores manifest bytes exactly as given; `digest` is the digest of `bytes`. */
  putManifest(bytes: Buffer, mediaType: string, digest: string, options: PutManifestOptions): Promise<void>;

  /**
   * The digest the destination's tag (or `tag`) points at now, undefined when it points at nothing.
   * Used by sync to skip pairs that are up to date; optional.
   */
  manifestDigest?(tag?: string): Promise<string | undefined>;

  /** Makes everything written visible at once (an index rename, an archive rename). */
  commit(): Promise<void>;

  /** Drops what was written and not committed (temporary files); the destination stays as it was. */
  abort(): Promise<void>;

  /** Releases handles and connections. */
  close(): Promise<void>;
}

export interface DestinationOptions {
  /** For a `docker save` archive without NAME:TAG in its reference: the names to write in RepoTags. */
  repoTags?: string[];
  /** Credentials, TLS and warnings for a registry destination. */
  registry?: SourceOptions;
}
