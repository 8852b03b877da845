import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { BallastError } from '../errors.js';
import { type Descriptor, isDigest, verifyBytes } from '../image/digest.js';
import { MediaType } from '../image/media-types.js';
import type { ImageReference } from '../reference/parse.js';
import { verifiedStream } from './archive/saved-image.js';
import type { BlobOptions, ImageSource, SourceOptions, StoredManifest } from './types.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const MAX_MANIFEST = 16 * 1024 * 1024;

function layoutError(path: string, message: string, cause?: unknown): BallastError {
  return new BallastError('LAYOUT_INVALID', `${path} ${message}`, {
    cause,
    hint: 'an OCI image layout has an oci-layout file, index.json and blobs/',
  });
}

async function readJson(path: string, file: string, layout: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(join(path, file), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw layoutError(layout, `is not an OCI image layout: it has no ${file}`, error);
    throw new BallastError('IO', `cannot read ${join(path, file)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw layoutError(layout, `has an invalid ${file} (${(error as Error).message})`, error);
  }
}

/**
 * `oci:PATH[:REF]`: an OCI image layout folder. REF matches `org.opencontainers.image.ref.name`;
 * without REF the layout must hold exactly one image. Every read is checked against its digest.
 */
export class OciLayoutSource implements ImageSource {
  readonly reference: ImageReference;
  /** skopeo prints no `Name` for oci: references; messages use the reference itself. */
  readonly name: string;
  readonly dockerReference: undefined;
  readonly path: string;
  /** The index.json entry the reference chose. */
  readonly entry: Descriptor;
  private readonly refNames: string[];

  private constructor(reference: ImageReference, path: string, entry: Descriptor, refNames: string[]) {
    this.reference = reference;
    this.path = path;
    this.entry = entry;
    this.refNames = refNames;
    const ref = reference.transport === 'oci' ? reference.ref : undefined;
    this.name = `oci:${path}${ref === undefined ? '' : `:${ref}`}`;
  }

  static async open(ref: ImageReference, _options: SourceOptions = {}): Promise<OciLayoutSource> {
    if (ref.transport !== 'oci')
      throw new BallastError('USAGE', `OciLayoutSource cannot open ${ref.transport}: references`);
    const path = ref.path;
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        throw new BallastError('NOT_FOUND', `OCI layout ${path} does not exist`, { cause: error });
      }
      throw new BallastError('IO', `cannot read ${path}: ${error.message}`, { cause: error });
    });
    if (!info.isDirectory()) {
      throw new BallastError('LAYOUT_INVALID', `${path} is not a directory: an OCI layout is a folder`, {
        hint: 'a docker save tar is read with docker-archive:PATH',
      });
    }
    const marker = (await readJson(path, 'oci-layout', path)) as { imageLayoutVersion?: unknown };
    if (typeof marker?.imageLayoutVersion !== 'string' || !/^1\.\d+\.\d+$/.test(marker.imageLayoutVersion)) {
      throw layoutError(
        path,
        `has an unsupported imageLayoutVersion ${JSON.stringify(marker?.imageLayoutVersion)}`,
      );
    }
    const index = (await readJson(path, 'index.json', path)) as { manifests?: unknown };
    if (!Array.isArray(index?.manifests)) throw layoutError(path, 'has an index.json with no manifests list');
    const entries = index.manifests.filter(
      (m): m is Descriptor =>
        typeof m === 'object' &&
        m !== null &&
        typeof (m as Descriptor).mediaType === 'string' &&
        isDigest(String((m as Descriptor).digest)) &&
        Number.isSafeInteger((m as Descriptor).size),
    );
    if (entries.length !== index.manifests.length)
      throw layoutError(path, 'has an index.json entry that is not a valid descriptor');
    const refNames = [
      ...new Set(
        entries.map((e) => e.annotations?.[REF_NAME]).filter((n): n is string => typeof n === 'string'),
      ),
    ];
    const listed = refNames.length ? [...refNames].sort().join(', ') : 'none';
    let entry: Descriptor;
    if (ref.ref === undefined) {
      if (entries.length !== 1) {
        throw new BallastError(
          'USAGE',
          `OCI layout ${path} holds ${entries.length} images (refs: ${listed}): name one with oci:${path}:REF`,
          { exitCode: 2 },
        );
      }
      entry = entries[0]!;
    } else {
      const matches = entries.filter((e) => e.annotations?.[REF_NAME] === ref.ref);
      if (matches.length === 0) {
        throw new BallastError('NOT_FOUND', `OCI layout ${path} has no image named ${ref.ref}`, {
          hint: `its refs: ${listed}`,
        });
      }
      if (matches.length > 1 && new Set(matches.map((m) => m.digest)).size > 1) {
        throw layoutError(path, `has ${matches.length} different images named ${ref.ref} in index.json`);
      }
      entry = matches[0]!;
    }
    return new OciLayoutSource(ref, path, entry, refNames);
  }

  private blobFile(digest: string): string {
    // isDigest guards the path: no "..", no separators.
    if (!isDigest(digest))
      throw new BallastError('MANIFEST_INVALID', `invalid digest ${JSON.stringify(digest)}`);
    const colon = digest.indexOf(':');
    return join(this.path, 'blobs', digest.slice(0, colon), digest.slice(colon + 1));
  }

  private missing(digest: string, cause?: unknown): BallastError {
    return new BallastError('NOT_FOUND', `blob ${digest} is missing from the OCI layout ${this.path}`, {
      cause,
      hint: 'the layout is incomplete; copy it again or run `umoci gc` only after fixing index.json',
    });
  }

  private async readManifestBlob(digest: string): Promise<Buffer> {
    const file = this.blobFile(digest);
    const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw this.missing(digest, error);
      throw new BallastError('IO', `cannot read ${file}: ${error.message}`, { cause: error });
    });
    try {
      const { size } = await handle.stat();
      if (size > MAX_MANIFEST) {
        throw new BallastError(
          'MANIFEST_INVALID',
          `manifest ${digest} in ${this.path} is ${size} bytes: too large`,
        );
      }
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }

  async getManifest(digest?: string): Promise<StoredManifest> {
    const descriptor = digest === undefined || digest === this.entry.digest ? this.entry : undefined;
    const wanted = descriptor?.digest ?? digest!;
    const bytes = await this.readManifestBlob(wanted);
    verifyBytes(bytes, descriptor ?? { digest: wanted }, `manifest ${wanted} in the OCI layout ${this.path}`);
    let mediaType = descriptor?.mediaType;
    try {
      const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
      if (typeof doc.mediaType === 'string') mediaType ??= doc.mediaType;
      else mediaType ??= Array.isArray(doc.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
    } catch {
      mediaType ??= MediaType.ociManifest;
    }
    return { bytes, mediaType, digest: wanted };
  }

  async getBlob(
    descriptor: Pick<Descriptor, 'digest' | 'size'> & Partial<Descriptor>,
    options: BlobOptions = {},
  ): Promise<Readable> {
    const file = this.blobFile(descriptor.digest);
    // Open first, so a missing blob is NOT_FOUND here rather than a stream error later.
    const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw this.missing(descriptor.digest, error);
      throw new BallastError('IO', `cannot read ${file}: ${error.message}`, { cause: error });
    });
    const stream = createReadStream(file, { fd: handle });
    // Unlike a bare listener, this one is removed when the stream closes.
    if (options.signal) addAbortSignal(options.signal, stream);
    return verifiedStream(
      stream,
      descriptor,
      `blob ${descriptor.digest} in the OCI layout ${this.path}`,
      options,
    );
  }

  async listTags(): Promise<string[]> {
    return [...this.refNames];
  }

  async close(): Promise<void> {}
}
