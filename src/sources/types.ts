import type { Readable } from 'node:stream';
import type { Descriptor } from '../image/digest.js';
import type { ImageReference } from '../reference/parse.js';

/** A manifest as the source stores it: the exact bytes, so digests survive. */
export interface StoredManifest {
  bytes: Buffer;
  mediaType: string;
  /** The digest of `bytes` (verified against the reference's digest when it names one). */
  digest: string;
}

export interface BlobProgress {
  /** Bytes delivered so far. */
  bytes: number;
  /** Total size when known. */
  total: number | undefined;
}

export interface BlobOptions {
  onProgress?: (progress: BlobProgress) => void;
  signal?: AbortSignal;
}

/**
 * One place an image can live. Every source gives the top-level manifest as stored and blobs as
 * streams that fail when their bytes do not match the descriptor's digest and size.
 */
export interface ImageSource {
  readonly reference: ImageReference;
  /** The name to show in messages. */
  readonly name: string;

  /**
   * The registry-style name of the image (`docker.io/library/ubuntu`), what `skopeo inspect` prints as
   * `Name`; undefined where the transport has none (an OCI layout, an unnamed archive, an image ID).
   */
  readonly dockerReference?: string | undefined;

  /**
   * With no digest: the top-level manifest the reference points at (it may be an index). With a
   * digest: that manifest, e.g. an index entry.
   */
  getManifest(digest?: string): Promise<StoredManifest>;

  /** A blob (config or layer) as a stream verified against `descriptor.digest` and `descriptor.size`. */
  getBlob(
    descriptor: Pick<Descriptor, 'digest' | 'size'> & Partial<Descriptor>,
    options?: BlobOptions,
  ): Promise<Readable>;

  /** The tags of the image's repository, where the transport has such a list. */
  listTags?(): Promise<string[]>;

  /**
   * Uncompressed layer sizes the source already knows (the Docker daemon does), keyed by diff ID;
   * layers missing here are measured by streaming them.
   */
  knownLayerSizes?(): Promise<Map<string, number>>;

  /**
   * Where an uncompressed layer lies inside a file (a layer.tar in a docker save archive), so it can be
   * read by seeking over file bodies; undefined when the layer is not stored that way.
   */
  layerFileRange?(diffId: string): Promise<{ path: string; offset: number; length: number } | undefined>;

  /** Releases connections and file handles. */
  close(): Promise<void>;
}

export interface SourceOptions {
  /** `os/arch[/variant]`; the host's platform when absent. */
  platform?: string;
  /** `user:password` for registries. */
  creds?: string;
  /** A docker-style auth file (`--authfile`). */
  authFile?: string;
  /** Registries (host[:port]) where TLS may be skipped or unverified. */
  insecure?: boolean | string[];
  /** Extra CA certificates in PEM. */
  caFile?: string;
  /** Where registry warnings (rate limits) go. */
  onWarning?: (message: string) => void;
  /** Engine API endpoint; `DOCKER_HOST` or the default unix socket when absent. */
  dockerHost?: string;
}
