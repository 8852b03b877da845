/**
 * Writes an OCI image layout (`oci:PATH[:REF]`), creating the folder or adding to an existing layout.
 * Every write is atomic, so a copy killed at any point leaves a layout that still validates:
 * - a blob goes to a temp name in its own folder, is verified as it streams, fsynced, then renamed to
 *   `blobs/<alg>/<hex>`; a blob already there is not written again;
 * - `index.json` is replaced by one rename at commit, after every blob and manifest is in place, so
 *   the ref name never points at an incomplete image.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { BallastError } from '../errors.js';
import { isDigest, VerifyingStream, verifyBytes } from '../image/digest.js';
import { INDEX_TYPES, MediaType } from '../image/media-types.js';
import { describeReference, type ImageReference } from '../reference/parse.js';
import { withKeyedLock } from '../util/concurrency.js';
import {
  ioError,
  processAlive,
  syncDir,
  tempName,
  tempOwner,
  writeFileAtomic,
  writeVerified,
} from './fs-atomic.js';
import type { BlobDescriptor, ImageDestination, PutBlobOptions, PutManifestOptions } from './types.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const LAYOUT_FILE = '{"imageLayoutVersion":"1.0.0"}';

interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

interface IndexDocument {
  schemaVersion: number;
  mediaType?: string;
  manifests: IndexEntry[];
  [key: string]: unknown;
}

// index.json is read, changed and replaced: one writer at a time per layout in this process...
const commitChains = new Map<string, Promise<void>>();

function withCommitLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  return withKeyedLock(commitChains, dir, () => withLockDir(join(dir, '.ballast-lock'), fn));
}

// ...and across processes, a lock folder holding the owner's pid (broken when that process is gone).
async function withLockDir<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFileAtomic(join(lock, 'pid'), String(process.pid), `writing the lock ${lock}`).catch(
        () => {},
      );
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(error, `taking the lock ${lock}`);
      const owner = Number.parseInt(await readFile(join(lock, 'pid'), 'utf8').catch(() => ''), 10);
      if (Number.isInteger(owner) && !processAlive(owner)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new BallastError('IO', `the OCI layout is locked by another process (${lock})`, {
          hint: 'wait for the other copy to finish, or remove the lock folder if no copy is running',
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

function blobPath(dir: string, digest: string): string {
  const colon = digest.indexOf(':');
  return join(dir, 'blobs', digest.slice(0, colon), digest.slice(colon + 1));
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export class OciLayoutDestination implements ImageDestination {
  readonly reference: ImageReference;
  readonly name: string;
  readonly supportedManifestTypes: readonly string[] = [MediaType.ociManifest, MediaType.ociIndex];
  readonly storesManifests = true;
  readonly dir: string;
  /** The ref name written in index.json; none for `oci:PATH`. */
  readonly refName: string | undefined;
  private readonly temps = new Set<string>();
  private pending: IndexEntry | undefined;

  private constructor(ref: Extract<ImageReference, { transport: 'oci' }>) {
    this.reference = ref;
    this.name = describeReference(ref);
    this.dir = ref.path;
    this.refName = ref.ref;
  }

  /** Opens (creating when absent) the layout; a non-empty folder that is not a layout is refused. */
  static async open(ref: ImageReference): Promise<OciLayoutDestination> {
    if (ref.transport !== 'oci') {
      throw new BallastError('USAGE', `${ref.input} is not an OCI layout reference`, { exitCode: 2 });
    }
    const destination = new OciLayoutDestination(ref);
    await destination.prepare();
    return destination;
  }

  private async prepare(): Promise<void> {
    const { dir } = this;
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      throw ioError(error, `creating the OCI layout folder ${dir}`);
    }
    // Two copies creating one new layout at once: the second must see it whole, not half-made.
    await withCommitLock(dir, () => this.initialise());
  }

  private async initialise(): Promise<void> {
    const { dir } = this;
    const layoutFile = join(dir, 'oci-layout');
    if (await exists(layoutFile)) {
      let version: unknown;
      try {
        version = (JSON.parse(await readFile(layoutFile, 'utf8')) as Record<string, unknown>)
          .imageLayoutVersion;
      } catch {
        version = undefined;
      }
      if (typeof version !== 'string' || !version.startsWith('1.')) {
        throw new BallastError('LAYOUT_INVALID', `${dir}/oci-layout does not name image layout version 1.x`);
      }
    } else {
      const entries = (await readdir(dir)).filter((name) => !name.startsWith('.ballast-'));
      if (entries.length > 0) {
        throw new BallastError(
          'LAYOUT_INVALID',
          `${dir} is not empty and is not an OCI image layout (no oci-layout file)`,
          {
            hint: 'choose an empty or new folder for oci:PATH',
          },
        );
      }
    }
    try {
      await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
      // index.json first, oci-layout last: a folder with oci-layout is always a whole layout.
      if (!(await exists(join(dir, 'index.json')))) {
        await writeFileAtomic(
          join(dir, 'index.json'),
          JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }),
          `writing ${dir}/index.json`,
        );
      }
      if (!(await exists(layoutFile)))
        await writeFileAtomic(layoutFile, LAYOUT_FILE, `writing ${layoutFile}`);
    } catch (error) {
      throw ioError(error, `initialising the OCI layout ${dir}`);
    }
    await this.removeStaleTemps();
  }

  /** Temp files that a killed copy left behind (its pid no longer runs). */
  private async removeStaleTemps(): Promise<void> {
    const blobs = join(this.dir, 'blobs');
    for (const algorithm of await readdir(blobs).catch(() => [] as string[])) {
      const folder = join(blobs, algorithm);
      for (const name of await readdir(folder).catch(() => [] as string[])) {
        const owner = tempOwner(name);
        if (owner !== undefined && !processAlive(owner)) await rm(join(folder, name), { force: true });
      }
    }
  }

  accepts(mediaType: string): boolean {
    return this.supportedManifestTypes.includes(mediaType);
  }

  async hasBlob(descriptor: BlobDescriptor): Promise<boolean> {
    if (!isDigest(descriptor.digest)) return false;
    try {
      const info = await stat(blobPath(this.dir, descriptor.digest));
      return info.isFile() && info.size === descriptor.size;
    } catch {
      return false;
    }
  }

  async putBlob(descriptor: BlobDescriptor, stream: Readable, options: PutBlobOptions = {}): Promise<void> {
    if (!isDigest(descriptor.digest)) {
      throw new BallastError('MANIFEST_INVALID', `invalid blob digest ${descriptor.digest}`);
    }
    const target = blobPath(this.dir, descriptor.digest);
    const folder = join(target, '..');
    const temp = join(folder, tempName());
    const what = `writing blob ${descriptor.digest} to ${this.dir}`;
    this.temps.add(temp);
    try {
      await mkdir(folder, { recursive: true });
      const handle = await open(temp, 'wx');
      try {
        const verifier = new VerifyingStream(descriptor, `blob ${descriptor.digest}`);
        const onProgress = options.onProgress;
        await writeVerified(stream, verifier, handle, {
          signal: options.signal,
          onChunk: onProgress && (() => onProgress({ bytes: verifier.bytes, total: descriptor.size })),
        });
        await handle.sync();
      } finally {
        await handle.close().catch(() => {});
      }
      await rename(temp, target);
      this.temps.delete(temp);
    } catch (error) {
      await rm(temp, { force: true }).catch(() => {});
      this.temps.delete(temp);
      throw ioError(error, what);
    }
  }

  async putManifest(
    bytes: Buffer,
    mediaType: string,
    digest: string,
    options: PutManifestOptions,
  ): Promise<void> {
    verifyBytes(bytes, { digest }, `manifest ${digest}`);
    if (!this.accepts(mediaType)) {
      throw new BallastError('MEDIA_TYPE_UNSUPPORTED', `an OCI layout does not store ${mediaType} manifests`);
    }
    const target = blobPath(this.dir, digest);
    if (!(await this.hasBlob({ digest, size: bytes.length }))) {
      await mkdir(join(target, '..'), { recursive: true }).catch(() => {});
      await writeFileAtomic(target, bytes, `writing manifest ${digest} to ${this.dir}`);
    }
    if (options.topLevel) {
      const entry: IndexEntry = { mediaType, digest, size: bytes.length };
      const refName = options.tag ?? this.refName;
      if (refName !== undefined) entry.annotations = { [REF_NAME]: refName };
      this.pending = entry;
    }
  }

  private async readIndex(): Promise<IndexDocument> {
    const file = join(this.dir, 'index.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, manifests: [] };
      throw ioError(error, `reading ${file}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (error) {
      throw new BallastError('LAYOUT_INVALID', `${file} is not JSON (${(error as Error).message})`);
    }
    const index = doc as IndexDocument;
    if (typeof doc !== 'object' || doc === null || !Array.isArray(index.manifests)) {
      throw new BallastError('LAYOUT_INVALID', `${file} has no manifests array`);
    }
    return index;
  }

  async manifestDigest(tag?: string): Promise<string | undefined> {
    const name = tag ?? this.refName;
    const index = await this.readIndex();
    const entries = index.manifests.filter((entry) =>
      name === undefined ? true : entry.annotations?.[REF_NAME] === name,
    );
    if (name === undefined && entries.length !== 1) return undefined;
    const entry = entries[entries.length - 1];
    // Only an entry whose manifest blob is really there counts as present.
    if (entry === undefined || !(await this.hasBlob(entry))) return undefined;
    return entry.digest;
  }

  async commit(): Promise<void> {
    const entry = this.pending;
    if (entry === undefined) return;
    await withCommitLock(this.dir, async () => {
      const index = await this.readIndex();
      const name = entry.annotations?.[REF_NAME];
      index.manifests = index.manifests.filter((old) =>
        name !== undefined
          ? old.annotations?.[REF_NAME] !== name
          : old.digest !== entry.digest || old.annotations?.[REF_NAME] !== undefined,
      );
      index.manifests.push(entry);
      index.schemaVersion = 2;
      if (index.mediaType !== undefined && !INDEX_TYPES.includes(index.mediaType))
        index.mediaType = MediaType.ociIndex;
      await syncDir(join(this.dir, 'blobs', 'sha256'));
      await writeFileAtomic(
        join(this.dir, 'index.json'),
        JSON.stringify(index),
        `writing ${this.dir}/index.json`,
      );
    });
    this.pending = undefined;
  }

  async abort(): Promise<void> {
    this.pending = undefined;
    await Promise.all([...this.temps].map((temp) => rm(temp, { force: true }).catch(() => {})));
    this.temps.clear();
  }

  async close(): Promise<void> {
    await this.abort();
  }
}
