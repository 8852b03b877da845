/**
 * The image inside a `docker save` tar, over any way of reaching the tar's members (a seekable file, or
 * repeated streaming passes over the daemon's save stream). Two layouts:
 *
 * - legacy (docker before 25): manifest.json lists Config and Layers paths. As skopeo does
 *   (containers/image docker/internal/tarfile), a Docker schema 2 manifest is synthesized with the
 *   config's digest and each layer served by its diff ID, serialized byte for byte as Go's json.Marshal
 *   writes it so the digest matches `skopeo inspect docker-archive:...`.
 * - Docker 25+: an OCI layout inside the tar (oci-layout, index.json, blobs/). The manifest stored in
 *   blobs/ is served as is, so its digest survives; manifest.json is used to match NAME:TAG.
 */

import { type Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BallastError } from '../../errors.js';
import { type Descriptor, isDigest, sha256, VerifyingStream, verifyBytes } from '../../image/digest.js';
import { parseConfig } from '../../image/manifest.js';
import { MediaType } from '../../image/media-types.js';
import { type DockerName, formatDockerName, parseDockerName } from '../../reference/parse.js';
import type { BlobOptions, StoredManifest } from '../types.js';
import { archiveError } from './tar-header.js';

export interface ArchiveMember {
  name: string;
  size: number;
}

/** How the saved-image logic reaches the members of a tar. */
export interface ArchiveStore {
  /** Names the archive in messages: `archive /tmp/app.tar`, `the save stream of local/app:1`. */
  readonly what: string;
  /** The regular member at `name` (symlinks and hard links followed). */
  get(name: string): ArchiveMember | undefined;
  read(member: ArchiveMember, limit: number): Promise<Buffer>;
  /** The first bytes, to sniff compression. */
  head(member: ArchiveMember, length: number): Promise<Buffer>;
  open(member: ArchiveMember, signal?: AbortSignal): Promise<Readable>;
  /** Where a member's bytes sit in a file, when the store is a plain file. */
  fileRange?(member: ArchiveMember): { path: string; offset: number; length: number };
}

const MAX_JSON = 64 * 1024 * 1024;

interface LegacyEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

interface LegacyLayer {
  diffId: string;
  member: ArchiveMember;
  compression: 'gzip' | undefined;
  /** Uncompressed size: the member's size, or measured by decompressing once. */
  size: number;
}

function sameName(a: DockerName, b: DockerName): boolean {
  return a.registry === b.registry && a.repository === b.repository && a.tag === b.tag;
}

function tryName(text: string): DockerName | undefined {
  try {
    return parseDockerName(text);
  } catch {
    return undefined;
  }
}

/** gzip is what skopeo meets in practice; other compressions are named in the error. */
function sniff(head: Buffer): 'gzip' | 'zstd' | 'bzip2' | 'xz' | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.toString('latin1', 0, 6) === '\xfd7zXZ\0') return 'xz';
  return undefined;
}

function parseJson(bytes: Buffer, what: string, file: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw archiveError(what, `has an invalid ${file} (${(error as Error).message})`, error);
  }
}

function blobPath(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}

export class SavedImage {
  readonly store: ArchiveStore;
  readonly topLevel: StoredManifest;
  /** The RepoTags of the chosen image, as the archive lists them. */
  readonly repoTags: string[];
  private readonly configBlob: { digest: string; member: ArchiveMember } | undefined;
  private readonly layers: Map<string, LegacyLayer>;
  private readonly oci: boolean;

  private constructor(init: {
    store: ArchiveStore;
    topLevel: StoredManifest;
    repoTags: string[];
    configBlob?: { digest: string; member: ArchiveMember };
    layers?: Map<string, LegacyLayer>;
    oci: boolean;
  }) {
    this.store = init.store;
    this.topLevel = init.topLevel;
    this.repoTags = init.repoTags;
    this.configBlob = init.configBlob;
    this.layers = init.layers ?? new Map();
    this.oci = init.oci;
  }

  /** Reads the archive's metadata and picks the image `selector` names (or the only one). */
  static async load(store: ArchiveStore, selector: DockerName | undefined): Promise<SavedImage> {
    const legacy = await readLegacyManifest(store);
    if (store.get('index.json') && store.get('oci-layout')) {
      return SavedImage.loadOci(store, selector, legacy);
    }
    if (legacy === undefined) {
      throw archiveError(store.what, 'has no manifest.json: it is not a docker save archive');
    }
    return SavedImage.loadLegacy(store, selector, legacy);
  }

  private static async loadLegacy(
    store: ArchiveStore,
    selector: DockerName | undefined,
    entries: LegacyEntry[],
  ): Promise<SavedImage> {
    const entry = chooseLegacy(store, selector, entries);
    const configMember = store.get(entry.Config);
    if (!configMember)
      throw archiveError(store.what, `is missing the config ${entry.Config} named in manifest.json`);
    const configBytes = await store.read(configMember, MAX_JSON);
    const configDigest = sha256(configBytes);
    const config = parseConfig(configBytes, `config ${entry.Config} in ${store.what}`);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== entry.Layers.length) {
      throw archiveError(
        store.what,
        `lists ${entry.Layers.length} layers in manifest.json but its config has ${diffIds.length} diff IDs`,
      );
    }
    const layers = new Map<string, LegacyLayer>();
    const descriptors: { mediaType: string; size: number; digest: string }[] = [];
    for (const [i, path] of entry.Layers.entries()) {
      const diffId = diffIds[i]!;
      let layer = layers.get(diffId);
      if (!layer) {
        const member = store.get(path);
        if (!member) throw archiveError(store.what, `is missing the layer ${path} named in manifest.json`);
        const compression = sniff(await store.head(member, 8));
        if (compression !== undefined && compression !== 'gzip') {
          throw new BallastError(
            'MEDIA_TYPE_UNSUPPORTED',
            `layer ${path} in ${store.what} is ${compression}-compressed, which ballast does not read inside archives`,
          );
        }
        const size = compression === 'gzip' ? await measureGunzip(store, member) : member.size;
        layer = { diffId, member, compression, size };
        layers.set(diffId, layer);
      }
      // Uncompressed layers are still labelled tar.gzip: that is what skopeo writes.
      descriptors.push({ mediaType: MediaType.dockerLayer, size: layer.size, digest: diffId });
    }
    // Key order and spacing as Go's json.Marshal of manifest.Schema2 writes them.
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: configDigest },
        layers: descriptors,
      }),
    );
    return new SavedImage({
      store,
      topLevel: { bytes, mediaType: MediaType.dockerManifest, digest: sha256(bytes) },
      repoTags: entry.RepoTags,
      configBlob: { digest: configDigest, member: configMember },
      layers,
      oci: false,
    });
  }

  private static async loadOci(
    store: ArchiveStore,
    selector: DockerName | undefined,
    legacy: LegacyEntry[] | undefined,
  ): Promise<SavedImage> {
    const indexMember = store.get('index.json')!;
    const index = parseJson(await store.read(indexMember, MAX_JSON), store.what, 'index.json') as {
      manifests?: Descriptor[];
    };
    const entries = (Array.isArray(index.manifests) ? index.manifests : []).filter(
      (m) => typeof m === 'object' && m !== null && isDigest(String(m.digest)),
    );
    const nameOf = (entry: Descriptor) => entry.annotations?.['io.containerd.image.name'];
    const allTags = [
      ...new Set([
        ...entries.map(nameOf).filter((n): n is string => n !== undefined),
        ...(legacy ?? []).flatMap((e) => e.RepoTags ?? []),
      ]),
    ];
    let chosen: Descriptor | undefined;
    let repoTags: string[] = [];
    if (selector) {
      chosen = entries.find((e) => {
        const name = nameOf(e);
        const parsed = name === undefined ? undefined : tryName(name);
        return parsed !== undefined && sameName(parsed, selector);
      });
      const legacyEntry = (legacy ?? []).find((e) =>
        (e.RepoTags ?? []).some((t) => {
          const parsed = tryName(t);
          return parsed !== undefined && sameName(parsed, selector);
        }),
      );
      if (!chosen && legacyEntry) chosen = await entryByConfig(store, entries, legacyEntry.Config);
      if (!chosen) throw notInArchive(store, selector, allTags);
      repoTags = legacyEntry?.RepoTags ?? [formatDockerName(selector)];
    } else {
      if (entries.length !== 1) throw ambiguous(store, entries.length, allTags);
      chosen = entries[0]!;
      repoTags = legacy?.length === 1 ? (legacy[0]!.RepoTags ?? []) : [];
    }
    const member = store.get(blobPath(chosen.digest));
    if (!member)
      throw archiveError(store.what, `is missing the manifest blob ${chosen.digest} named in index.json`);
    const bytes = await store.read(member, MAX_JSON);
    verifyBytes(bytes, chosen, `manifest ${chosen.digest} in ${store.what}`);
    return new SavedImage({
      store,
      topLevel: { bytes, mediaType: chosen.mediaType, digest: chosen.digest },
      repoTags,
      oci: true,
    });
  }

  async getManifest(digest?: string): Promise<StoredManifest> {
    if (digest === undefined || digest === this.topLevel.digest) return this.topLevel;
    if (!this.oci || !isDigest(digest)) {
      throw new BallastError('NOT_FOUND', `manifest ${digest} is not in ${this.store.what}`);
    }
    const member = this.store.get(blobPath(digest));
    if (!member) throw new BallastError('NOT_FOUND', `manifest ${digest} is not in ${this.store.what}`);
    const bytes = await this.store.read(member, MAX_JSON);
    verifyBytes(bytes, { digest }, `manifest ${digest} in ${this.store.what}`);
    const declared = (() => {
      try {
        const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
        return typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
      } catch {
        return undefined;
      }
    })();
    return { bytes, mediaType: declared ?? MediaType.ociManifest, digest };
  }

  async getBlob(
    descriptor: Pick<Descriptor, 'digest' | 'size'>,
    options: BlobOptions = {},
  ): Promise<Readable> {
    const what = `blob ${descriptor.digest} in ${this.store.what}`;
    let stream: Readable;
    if (this.oci) {
      const member = isDigest(descriptor.digest) ? this.store.get(blobPath(descriptor.digest)) : undefined;
      if (!member) throw new BallastError('NOT_FOUND', `${what} does not exist`);
      stream = await this.store.open(member, options.signal);
    } else if (this.configBlob && descriptor.digest === this.configBlob.digest) {
      stream = await this.store.open(this.configBlob.member, options.signal);
    } else {
      const layer = this.layers.get(descriptor.digest);
      if (!layer)
        throw new BallastError('NOT_FOUND', `${what} does not exist (not the config or a layer diff ID)`);
      stream = await this.store.open(layer.member, options.signal);
      if (layer.compression === 'gzip') stream = pipeInto(stream, createGunzip());
    }
    return verifiedStream(stream, descriptor, what, options);
  }

  /** The file range of an uncompressed layer, for readers that seek; undefined when compressed. */
  async layerFileRange(
    diffId: string,
  ): Promise<{ path: string; offset: number; length: number } | undefined> {
    if (!this.store.fileRange) return undefined;
    if (this.oci) {
      const member = isDigest(diffId) ? this.store.get(blobPath(diffId)) : undefined;
      if (!member || sniff(await this.store.head(member, 8)) !== undefined) return undefined;
      return this.store.fileRange(member);
    }
    const layer = this.layers.get(diffId);
    if (!layer || layer.compression !== undefined) return undefined;
    return this.store.fileRange(layer.member);
  }
}

/**
 * `stream` checked against the descriptor's digest and size while it passes (VerifyingStream), with
 * progress reported per chunk.
 */
export function verifiedStream(
  stream: Readable,
  descriptor: Pick<Descriptor, 'digest' | 'size'>,
  what: string,
  options: BlobOptions = {},
): Readable {
  const verified = pipeInto(stream, new VerifyingStream(descriptor, what));
  const onProgress = options.onProgress;
  if (!onProgress) return verified;
  let bytes = 0;
  const progress = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      onProgress({ bytes, total: descriptor.size });
      callback(null, chunk);
    },
  });
  return pipeInto(verified, progress);
}

/** Pipes `from` into `to`, passing an error of `from` on to `to`. */
export function pipeInto<T extends NodeJS.ReadWriteStream & Readable>(from: Readable, to: T): T {
  from.on('error', (error) => to.destroy(error));
  to.on('close', () => {
    if (!from.destroyed) from.destroy();
  });
  from.pipe(to);
  return to;
}

async function measureGunzip(store: ArchiveStore, member: ArchiveMember): Promise<number> {
  const stream = pipeInto(await store.open(member), createGunzip());
  let size = 0;
  try {
    for await (const chunk of stream) size += (chunk as Buffer).length;
  } catch (error) {
    throw archiveError(store.what, `has a corrupt gzip layer ${member.name}`, error);
  }
  return size;
}

async function readLegacyManifest(store: ArchiveStore): Promise<LegacyEntry[] | undefined> {
  const member = store.get('manifest.json');
  if (!member) return undefined;
  const doc = parseJson(await store.read(member, MAX_JSON), store.what, 'manifest.json');
  if (!Array.isArray(doc)) throw archiveError(store.what, 'has a manifest.json that is not a list');
  return doc.map((raw, i) => {
    const e = raw as Partial<LegacyEntry>;
    if (typeof e?.Config !== 'string' || !Array.isArray(e.Layers)) {
      throw archiveError(store.what, `has an invalid manifest.json entry ${i} (no Config or Layers)`);
    }
    return {
      Config: e.Config,
      Layers: e.Layers.map(String),
      RepoTags: Array.isArray(e.RepoTags) ? e.RepoTags : [],
    };
  });
}

function chooseLegacy(
  store: ArchiveStore,
  selector: DockerName | undefined,
  entries: LegacyEntry[],
): LegacyEntry {
  const allTags = entries.flatMap((e) => e.RepoTags);
  if (selector === undefined) {
    if (entries.length !== 1) throw ambiguous(store, entries.length, allTags);
    return entries[0]!;
  }
  const matches = entries.filter((e) =>
    e.RepoTags.some((t) => {
      const parsed = tryName(t);
      return parsed !== undefined && sameName(parsed, selector);
    }),
  );
  if (matches.length === 0) throw notInArchive(store, selector, allTags);
  return matches[0]!;
}

async function entryByConfig(
  store: ArchiveStore,
  entries: Descriptor[],
  configPath: string,
): Promise<Descriptor | undefined> {
  const match = /(?:^|\/)(sha256)\/([a-f0-9]{64})$/.exec(configPath);
  if (!match) return undefined;
  const configDigest = `${match[1]}:${match[2]}`;
  for (const entry of entries) {
    const member = store.get(blobPath(entry.digest));
    if (!member || member.size > MAX_JSON) continue;
    const doc = parseJson(await store.read(member, MAX_JSON), store.what, `manifest ${entry.digest}`) as {
      config?: { digest?: string };
    };
    if (doc.config?.digest === configDigest) return entry;
  }
  return undefined;
}

function ambiguous(store: ArchiveStore, count: number, tags: string[]): BallastError {
  return new BallastError(
    'USAGE',
    `${store.what} holds ${count} images${tags.length ? ` (${tags.join(', ')})` : ''}: name one`,
    { hint: 'write docker-archive:PATH:NAME:TAG', exitCode: 2 },
  );
}

function notInArchive(store: ArchiveStore, selector: DockerName, tags: string[]): BallastError {
  return new BallastError('NOT_FOUND', `${store.what} has no image ${formatDockerName(selector)}`, {
    hint: tags.length ? `it holds ${tags.join(', ')}` : 'it holds no tagged images',
  });
}
