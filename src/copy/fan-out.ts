/**
 * One image to several destinations at once: each blob is read from the source once and streamed to
 * every destination that lacks it. A destination that fails is dropped and its error kept; the others
 * go on (sync's rule), and the copy fails only when every destination has.
 */
import { PassThrough, type Readable } from 'node:stream';
import { BallastError } from '../errors.js';
import type { ImageSource } from '../sources/types.js';
import { withKeyedLock } from '../util/concurrency.js';
import type { BlobDescriptor, ImageDestination, PutBlobOptions, PutManifestOptions } from './types.js';

export interface FanOutChild {
  destination: ImageDestination;
  error: Error | undefined;
  blobsCopied: number;
  blobsMounted: number;
  bytesCopied: number;
}

/** Where blobs land: a repository of a registry, a layout folder, an archive file. */
export function destinationKey(destination: ImageDestination): string {
  const ref = destination.reference;
  if (ref.transport === 'docker') return `docker://${ref.registry}/${ref.repository}`;
  return ref.transport === 'docker-daemon' ? ref.input : `${ref.transport}:${ref.path}`;
}

/** Writes every chunk of `input` to each output, at the pace of the slowest; a closed output is skipped. */
function tee(input: Readable, outputs: PassThrough[]): void {
  input.on('data', (chunk: Buffer) => {
    let waiting = 0;
    const resumeOne = () => {
      if (--waiting === 0) input.resume();
    };
    for (const output of outputs) {
      if (output.destroyed || output.writableEnded) continue;
      if (!output.write(chunk)) {
        waiting++;
        const done = () => {
          output.off('drain', done);
          output.off('close', done);
          resumeOne();
        };
        output.on('drain', done);
        output.on('close', done);
      }
    }
    if (waiting > 0) input.pause();
  });
  input.once('end', () => {
    for (const output of outputs) if (!output.destroyed) output.end();
  });
  input.once('error', (error) => {
    for (const output of outputs) output.destroy(error);
  });
}

export class FanOutDestination implements ImageDestination {
  readonly reference: ImageDestination['reference'];
  readonly name: string;
  readonly supportedManifestTypes: readonly string[];
  readonly maxConcurrentBlobs: number | undefined;
  /** The fan-out takes each child's blob lock itself; the engine must not take one for it. */
  readonly locksBlobs = true;
  readonly children: FanOutChild[];
  /** Per blob: the children that lack it, from the last hasBlob / mountBlob. */
  private readonly missing = new Map<string, FanOutChild[]>();

  constructor(
    destinations: readonly ImageDestination[],
    private readonly locks?: Map<string, Promise<void>>,
  ) {
    if (destinations.length === 0)
      throw new BallastError('USAGE', 'a fan-out needs at least one destination');
    this.children = destinations.map((destination) => ({
      destination,
      error: undefined,
      blobsCopied: 0,
      blobsMounted: 0,
      bytesCopied: 0,
    }));
    this.reference = destinations[0]!.reference;
    this.name = destinations.map((d) => d.name).join(', ');
    this.supportedManifestTypes = destinations[0]!.supportedManifestTypes.filter((type) =>
      destinations.every((d) => d.accepts(type)),
    );
    const limits = destinations.map((d) => d.maxConcurrentBlobs ?? Number.POSITIVE_INFINITY);
    const limit = Math.min(...limits);
    this.maxConcurrentBlobs = Number.isFinite(limit) ? limit : undefined;
  }

  private get live(): FanOutChild[] {
    return this.children.filter((c) => c.error === undefined);
  }

  /** Runs `work` for one child; a failure drops the child, and only the last child's failure is thrown. */
  private async guarded<T>(child: FanOutChild, work: () => Promise<T>): Promise<T | undefined> {
    try {
      return await work();
    } catch (error) {
      child.error ??= error instanceof Error ? error : new Error(String(error));
      if (this.live.length === 0) throw error;
      return undefined;
    }
  }

  accepts(mediaType: string): boolean {
    return this.live.every((c) => c.destination.accepts(mediaType));
  }

  async hasBlob(descriptor: BlobDescriptor): Promise<boolean> {
    const lacking: FanOutChild[] = [];
    await Promise.all(
      this.live.map((child) =>
        this.guarded(child, async () => {
          if (!(await child.destination.hasBlob(descriptor))) lacking.push(child);
        }),
      ),
    );
    this.missing.set(descriptor.digest, lacking);
    return lacking.length === 0;
  }

  async mountBlob(descriptor: BlobDescriptor, from: ImageSource): Promise<boolean> {
    const lacking: FanOutChild[] = [];
    for (const child of this.missing.get(descriptor.digest) ?? this.live) {
      const mount = child.destination.mountBlob?.bind(child.destination);
      const mounted = mount ? await this.guarded(child, () => mount(descriptor, from)) : false;
      if (mounted) child.blobsMounted++;
      else if (child.error === undefined) lacking.push(child);
    }
    this.missing.set(descriptor.digest, lacking);
    return lacking.length === 0;
  }

  async putBlob(descriptor: BlobDescriptor, stream: Readable, options: PutBlobOptions = {}): Promise<void> {
    const targets = (this.missing.get(descriptor.digest) ?? this.live).filter((c) => c.error === undefined);
    this.missing.delete(descriptor.digest);
    const counts = targets.map(() => 0);
    // Counting in the branch itself: a 'data' listener would start it flowing before the upload reads.
    const branches = targets.map(
      (_, i) =>
        new PassThrough({
          transform(chunk: Buffer, _encoding, callback) {
            counts[i] = (counts[i] ?? 0) + chunk.length;
            callback(null, chunk);
          },
        }),
    );
    tee(stream, branches);
    await Promise.all(
      targets.map((child, i) => {
        const branch = branches[i]!;
        return this.guarded(child, () =>
          withKeyedLock(
            this.locks,
            `${destinationKey(child.destination)}\n${descriptor.digest}`,
            async () => {
              // Another copy may have sent it while this one waited for the lock.
              if (this.locks && (await child.destination.hasBlob(descriptor))) {
                branch.resume();
                return;
              }
              const childOptions: PutBlobOptions = {};
              if (options.signal) childOptions.signal = options.signal;
              if (options.reopen) childOptions.reopen = options.reopen;
              if (options.verified) childOptions.verified = true;
              await child.destination.putBlob(descriptor, branch, childOptions);
              child.blobsCopied++;
              child.bytesCopied += counts[i] ?? 0;
            },
          ),
        ).finally(() => {
          // A child that failed must not hold the others back.
          if (!branch.readableEnded) branch.resume();
        });
      }),
    );
  }

  async putManifest(
    bytes: Buffer,
    mediaType: string,
    digest: string,
    options: PutManifestOptions,
  ): Promise<void> {
    await Promise.all(
      this.live.map((child) =>
        this.guarded(child, () => child.destination.putManifest(bytes, mediaType, digest, options)),
      ),
    );
  }

  async commit(): Promise<void> {
    await Promise.all(this.live.map((child) => this.guarded(child, () => child.destination.commit())));
  }

  async abort(): Promise<void> {
    await Promise.all(this.children.map((child) => child.destination.abort().catch(() => {})));
  }

  async close(): Promise<void> {
    await Promise.all(this.children.map((child) => child.destination.close().catch(() => {})));
  }
}
