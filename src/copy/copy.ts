/**
 * The copy engine: reads an image from any source and writes it to any destination. Exact by default
 * (the manifest bytes, and so the digest, are kept whenever the destination takes the media type);
 * blobs first with bounded concurrency, then child manifests, then the top-level one, then commit.
 */
import { setMaxListeners } from 'node:events';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { BallastError } from '../errors.js';
import { type Descriptor, sha256, verifyBytes } from '../image/digest.js';
import { type ImageIndex, type ImageManifest, parseManifest } from '../image/manifest.js';
import { INDEX_TYPES, MediaType } from '../image/media-types.js';
import { formatPlatform, hostPlatform, parsePlatform, selectPlatform } from '../image/platform.js';
import type { ImageSource, StoredManifest } from '../sources/types.js';
import { withKeyedLock } from '../util/concurrency.js';
import { convertImageManifest, convertIndex, ociMediaType } from './convert.js';
import { destinationKey } from './fan-out.js';
import type { ImageDestination } from './types.js';

export type CopyEvent =
  /** Once, before any blob: what the copy will look at. */
  | { type: 'plan'; blobs: number; bytes: number; manifests: number }
  /** An index was reduced to one image (`platform`, or a destination that cannot store an index). */
  | { type: 'platform'; platform: string; digest: string }
  | { type: 'blob-start'; digest: string; size: number; mediaType: string | undefined }
  | { type: 'blob-progress'; digest: string; bytes: number; size: number }
  | { type: 'blob-done'; digest: string; size: number }
  | { type: 'blob-skipped'; digest: string; size: number; reason: 'exists' | 'mounted' }
  /** A manifest rewritten with OCI media types (its digest changes). */
  | { type: 'converted'; from: string; to: string; digest: string; convertedDigest: string }
  | { type: 'manifest'; digest: string; mediaType: string; topLevel: boolean };

export interface CopyOptions {
  /** `os/arch[/variant]`: copy only that image of a multi-platform index (it becomes the top level). */
  platform?: string;
  /** Blobs sent at once; default 4. */
  jobs?: number;
  /** Refuse (a BallastError) instead of converting manifests to media types the destination takes. */
  preserveDigests?: boolean;
  /** The tag to write at the destination instead of its reference's own. */
  tag?: string;
  /**
   * Shared by copies that run at once (a sync): a blob on its way to a destination is sent by one
   * copy while the others wait for it and then find it there, instead of all sending it.
   */
  blobLocks?: Map<string, Promise<void>>;
  onEvent?: (event: CopyEvent) => void;
  signal?: AbortSignal;
}

export interface CopyResult {
  blobsCopied: number;
  /** Blobs the destination had, or got by a mount, so not sent. */
  blobsSkipped: number;
  blobsMounted: number;
  bytesCopied: number;
  manifestsWritten: number;
  /** True when a manifest was rewritten with other media types (so its digest changed). */
  converted: boolean;
  /** The digest of the top-level manifest as written at the destination. */
  digest: string;
  mediaType: string;
  /** The source's top-level digest (differs from `digest` after a conversion or a platform choice). */
  sourceDigest: string;
  durationMs: number;
}

export const DEFAULT_JOBS = 4;

/** A manifest to write: what the source stored, and what goes to the destination (maybe converted). */
interface PlannedManifest {
  source: StoredManifest;
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

interface Plan {
  blobs: Descriptor[];
  /** Children first, the top-level one last. */
  manifests: PlannedManifest[];
  converted: boolean;
}

function schema1Error(name: string): BallastError {
  return new BallastError(
    'MEDIA_TYPE_UNSUPPORTED',
    `${name} is a Docker schema 1 image, which ballast does not copy`,
    { hint: 're-push the image with a current docker or skopeo to convert it to schema 2, then copy that' },
  );
}

/** Builds the plan: which blobs, which manifests in which order, converted where needed. */
class Planner {
  readonly blobs = new Map<string, Descriptor>();
  readonly manifests: PlannedManifest[] = [];
  converted = false;

  constructor(
    private readonly source: ImageSource,
    private readonly destination: ImageDestination,
    private readonly options: CopyOptions,
  ) {}

  /** The media type a manifest of type `mediaType` is written with, or an error when it cannot be. */
  private target(mediaType: string, digest: string): string {
    if (this.destination.storesManifests === false || this.destination.accepts(mediaType)) return mediaType;
    const oci = ociMediaType(mediaType);
    this.refuseConversion(mediaType, oci, digest);
    return oci;
  }

  /** Throws unless converting a manifest to `to` is allowed and gives a type the destination stores. */
  private refuseConversion(from: string, to: string, digest: string): void {
    if (!this.destination.accepts(to)) {
      throw new BallastError(
        'MEDIA_TYPE_UNSUPPORTED',
        `${this.destination.name} cannot store a manifest of type ${from} (${digest})`,
        { hint: `it stores ${this.destination.supportedManifestTypes.join(', ')}` },
      );
    }
    if (this.options.preserveDigests) {
      throw new BallastError(
        'MEDIA_TYPE_UNSUPPORTED',
        `${this.destination.name} does not store ${from}: the manifest ${digest} would have to be converted to ${to}, which changes its digest, and --preserve-digests forbids that`,
        { hint: 'copy to a registry (which stores Docker media types), or drop --preserve-digests' },
      );
    }
  }

  private emitConverted(from: StoredManifest, to: PlannedManifest): void {
    this.converted = true;
    this.options.onEvent?.({
      type: 'converted',
      from: from.mediaType,
      to: to.mediaType,
      digest: from.digest,
      convertedDigest: to.digest,
    });
  }

  addImage(stored: StoredManifest, manifest: ImageManifest): PlannedManifest {
    for (const blob of [manifest.config, ...manifest.layers]) {
      if (blob.urls?.length && blob.mediaType.includes('nondistributable')) continue;
      if (blob.urls?.length && blob.mediaType === MediaType.dockerLayerForeign) continue;
      if (!this.blobs.has(blob.digest)) this.blobs.set(blob.digest, blob);
    }
    const mediaType = this.target(manifest.mediaType, stored.digest);
    let planned: PlannedManifest;
    if (mediaType === manifest.mediaType) {
      planned = { source: stored, bytes: stored.bytes, mediaType, digest: stored.digest };
    } else {
      const bytes = convertImageManifest(stored.bytes, `manifest ${stored.digest} of ${this.source.name}`);
      planned = { source: stored, bytes, mediaType, digest: sha256(bytes) };
      this.emitConverted(stored, planned);
    }
    this.manifests.push(planned);
    return planned;
  }

  async addIndex(stored: StoredManifest, index: ImageIndex, depth = 0): Promise<PlannedManifest> {
    if (depth > 4) throw new BallastError('MANIFEST_INVALID', `${this.source.name}: indexes nested too deep`);
    const changed = new Map<string, Pick<Descriptor, 'digest' | 'size' | 'mediaType'>>();
    for (const entry of index.manifests) {
      const child = await this.source.getManifest(entry.digest);
      verifyBytes(child.bytes, entry, `manifest ${entry.digest} of ${this.source.name}`);
      const parsed = parseManifest(
        child.bytes,
        entry.mediaType,
        `manifest ${entry.digest} of ${this.source.name}`,
      );
      if (parsed.kind === 'schema1') throw schema1Error(`${this.source.name}@${entry.digest}`);
      const written =
        parsed.kind === 'index'
          ? await this.addIndex(child, parsed, depth + 1)
          : this.addImage(child, parsed);
      if (written.digest !== entry.digest || written.mediaType !== entry.mediaType) {
        changed.set(entry.digest, {
          digest: written.digest,
          size: written.bytes.length,
          mediaType: written.mediaType,
        });
      }
    }
    const direct = this.destination.storesManifests === false || this.destination.accepts(index.mediaType);
    let planned: PlannedManifest;
    if (direct && changed.size === 0) {
      planned = { source: stored, bytes: stored.bytes, mediaType: index.mediaType, digest: stored.digest };
    } else {
      // A converted child changes the index that points at it; convertIndex writes OCI types throughout.
      this.refuseConversion(index.mediaType, MediaType.ociIndex, stored.digest);
      const bytes = convertIndex(stored.bytes, changed, `index ${stored.digest} of ${this.source.name}`);
      planned = { source: stored, bytes, mediaType: MediaType.ociIndex, digest: sha256(bytes) };
      this.emitConverted(stored, planned);
    }
    this.manifests.push(planned);
    return planned;
  }
}

/** Counts bytes as they pass, for progress and the summary. */
class Counter extends Transform {
  bytes = 0;
  constructor(private readonly onBytes: (bytes: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes(this.bytes);
    callback(null, chunk);
  }
}

function aborted(signal: AbortSignal): BallastError {
  return signal.reason instanceof Error && BallastError.is(signal.reason)
    ? signal.reason
    : new BallastError('IO', 'the copy was cancelled', { cause: signal.reason });
}

/** Whether the destination can hold an index at all (directly or converted). */
function acceptsIndexes(destination: ImageDestination): boolean {
  return INDEX_TYPES.some((type) => destination.accepts(type));
}

/**
 * Copies the image `source` points at into `destination`. A multi-platform index is copied whole
 * (every child and its blobs, then the index) unless `options.platform` names one image, which then
 * becomes the top-level manifest. The destination is committed on success and aborted on failure.
 */
export async function copyImage(
  source: ImageSource,
  destination: ImageDestination,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const started = performance.now();
  const emit = options.onEvent ?? (() => {});
  const controller = new AbortController();
  // Every blob in flight listens on it (a download and an upload each): more than the default 10.
  setMaxListeners(Number.POSITIVE_INFINITY, controller.signal);
  const onOuterAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    if (options.signal?.aborted) throw aborted(options.signal);
    const top = await source.getManifest();
    const parsed = parseManifest(top.bytes, top.mediaType, `manifest of ${source.name}`);
    if (parsed.kind === 'schema1') throw schema1Error(source.name);

    const planner = new Planner(source, destination, options);
    if (parsed.kind === 'index' && (options.platform !== undefined || !acceptsIndexes(destination))) {
      // One image of the index: the requested platform, or the host's when the destination keeps one image.
      const wanted = options.platform !== undefined ? parsePlatform(options.platform) : hostPlatform();
      const entry = selectPlatform(parsed.manifests, wanted, `the index of ${source.name}`);
      const child = await source.getManifest(entry.digest);
      verifyBytes(child.bytes, entry, `manifest ${entry.digest} of ${source.name}`);
      const image = parseManifest(child.bytes, entry.mediaType, `manifest ${entry.digest} of ${source.name}`);
      if (image.kind === 'schema1') throw schema1Error(`${source.name}@${entry.digest}`);
      if (image.kind !== 'manifest') {
        throw new BallastError(
          'MANIFEST_INVALID',
          `the index of ${source.name} points at another index for ${formatPlatform(entry.platform)}`,
        );
      }
      emit({ type: 'platform', platform: formatPlatform(entry.platform), digest: entry.digest });
      planner.addImage(child, image);
    } else if (parsed.kind === 'index') {
      await planner.addIndex(top, parsed);
    } else {
      planner.addImage(top, parsed);
    }
    const plan: Plan = {
      blobs: [...planner.blobs.values()],
      manifests: planner.manifests,
      converted: planner.converted,
    };
    emit({
      type: 'plan',
      blobs: plan.blobs.length,
      bytes: plan.blobs.reduce((sum, blob) => sum + blob.size, 0),
      manifests: plan.manifests.length,
    });

    const stats = { blobsCopied: 0, blobsSkipped: 0, blobsMounted: 0, bytesCopied: 0 };
    const copyBlob = (blob: Descriptor): Promise<void> =>
      destination.locksBlobs
        ? sendBlob(blob)
        : withKeyedLock(options.blobLocks, `${destinationKey(destination)}\n${blob.digest}`, () =>
            sendBlob(blob),
          );
    const sendBlob = async (blob: Descriptor): Promise<void> => {
      if (await destination.hasBlob(blob)) {
        stats.blobsSkipped++;
        emit({ type: 'blob-skipped', digest: blob.digest, size: blob.size, reason: 'exists' });
        return;
      }
      if (destination.mountBlob && (await destination.mountBlob(blob, source))) {
        stats.blobsSkipped++;
        stats.blobsMounted++;
        emit({ type: 'blob-skipped', digest: blob.digest, size: blob.size, reason: 'mounted' });
        return;
      }
      emit({ type: 'blob-start', digest: blob.digest, size: blob.size, mediaType: blob.mediaType });
      const opened: Readable[] = [];
      const counted = async (): Promise<Counter> => {
        const stream = await source.getBlob(blob, { signal: controller.signal });
        opened.push(stream);
        const counter = new Counter((bytes) =>
          emit({ type: 'blob-progress', digest: blob.digest, bytes, size: blob.size }),
        );
        // A failed source stream must fail the counter too, or the destination would wait for ever.
        stream.once('error', (error) => counter.destroy(error));
        stream.pipe(counter);
        return counter;
      };
      // An upload that must start over (a connection dropped mid-PUT) reads the blob again; the
      // bytes counted are those of the attempt that succeeded.
      let counter = await counted();
      try {
        await destination.putBlob(blob, counter, {
          signal: controller.signal,
          verified: true,
          reopen: async () => {
            counter = await counted();
            return counter;
          },
        });
      } finally {
        for (const stream of opened) {
          stream.unpipe();
          if (!stream.destroyed) stream.destroy();
        }
      }
      stats.blobsCopied++;
      stats.bytesCopied += counter.bytes;
      emit({ type: 'blob-done', digest: blob.digest, size: blob.size });
    };
    const jobs = Math.max(
      1,
      Math.min(options.jobs ?? DEFAULT_JOBS, destination.maxConcurrentBlobs ?? Infinity),
    );
    await runBounded(plan.blobs, jobs, copyBlob, controller);

    let manifestsWritten = 0;
    for (const [i, manifest] of plan.manifests.entries()) {
      if (controller.signal.aborted) throw aborted(controller.signal);
      const topLevel = i === plan.manifests.length - 1;
      const putOptions = options.tag !== undefined ? { topLevel, tag: options.tag } : { topLevel };
      await destination.putManifest(manifest.bytes, manifest.mediaType, manifest.digest, putOptions);
      manifestsWritten++;
      emit({ type: 'manifest', digest: manifest.digest, mediaType: manifest.mediaType, topLevel });
    }
    await destination.commit();
    const last = plan.manifests[plan.manifests.length - 1]!;
    return {
      ...stats,
      manifestsWritten,
      converted: plan.converted,
      digest: last.digest,
      mediaType: last.mediaType,
      sourceDigest: top.digest,
      durationMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    controller.abort(error);
    await destination.abort().catch(() => {});
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
}

/**
 * Runs `work` over `items`, at most `limit` at once. The first failure aborts `controller` (so blobs
 * in flight stop), waits for the others to settle, and is thrown.
 */
async function runBounded<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
  controller: AbortController,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      if (controller.signal.aborted) {
        failure ??= { error: aborted(controller.signal) };
        return;
      }
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        if (failure === undefined) {
          failure = { error };
          controller.abort(error);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== undefined) throw failure.error;
}
