import { BallastError } from '../errors.js';
import { assertDigest, type Descriptor, type Platform } from './digest.js';
import { IMAGE_MANIFEST_TYPES, INDEX_TYPES, MediaType, SCHEMA1_TYPES } from './media-types.js';

/** A Docker schema 2 or OCI image manifest. */
export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  raw: Record<string, unknown>;
}

/** A Docker manifest list or OCI index. */
export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
  raw: Record<string, unknown>;
}

/** Docker schema 1: inspected, never used as a source of layers for analysis or copy. */
export interface Schema1Manifest {
  kind: 'schema1';
  mediaType: string;
  name: string;
  tag: string;
  architecture: string;
  /** Layer digests, bottom first (schema 1 lists them top first). */
  layers: string[];
  /** The v1Compatibility JSON objects, bottom first. */
  history: Record<string, unknown>[];
  raw: Record<string, unknown>;
}

export type Manifest = ImageManifest | ImageIndex | Schema1Manifest;

function manifestError(what: string, message: string): BallastError {
  return new BallastError('MANIFEST_INVALID', `${what}: ${message}`);
}

function parseDescriptor(value: unknown, what: string): Descriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw manifestError(what, 'a descriptor is not an object');
  }
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string') throw manifestError(what, 'a descriptor has no mediaType');
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw manifestError(what, `descriptor ${String(d.digest)} has an invalid size`);
  }
  const descriptor: Descriptor = {
    mediaType: d.mediaType,
    digest: assertDigest(d.digest, what),
    size: d.size,
  };
  if (Array.isArray(d.urls)) descriptor.urls = d.urls.filter((u): u is string => typeof u === 'string');
  if (typeof d.annotations === 'object' && d.annotations !== null) {
    descriptor.annotations = d.annotations as Record<string, string>;
  }
  if (typeof d.platform === 'object' && d.platform !== null) descriptor.platform = d.platform as Platform;
  if (typeof d.artifactType === 'string') descriptor.artifactType = d.artifactType;
  return descriptor;
}

/**
 * Parses manifest bytes. The media type comes from the document's own `mediaType` field, then from
 * the `contentType` the source reported, then from the document's shape (OCI allows omitting it).
 */
export function parseManifest(bytes: Uint8Array, contentType?: string, what = 'manifest'): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw manifestError(what, `not JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw manifestError(what, 'not a JSON object');
  }
  const doc = json as Record<string, unknown>;
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  const hint = contentType?.split(';')[0]?.trim();
  let mediaType = declared ?? (hint && hint !== 'application/json' ? hint : undefined);
  if (mediaType === undefined) {
    if (doc.schemaVersion === 1) mediaType = MediaType.dockerSchema1Signed;
    else if (Array.isArray(doc.manifests)) mediaType = MediaType.ociIndex;
    else if (doc.config !== undefined && Array.isArray(doc.layers)) mediaType = MediaType.ociManifest;
  }
  if (mediaType === undefined) {
    throw new BallastError(
      'MEDIA_TYPE_UNSUPPORTED',
      `${what}: no mediaType and not shaped like a known manifest`,
    );
  }
  if (IMAGE_MANIFEST_TYPES.includes(mediaType)) {
    if (doc.schemaVersion !== 2)
      throw manifestError(what, `schemaVersion is ${String(doc.schemaVersion)}, expected 2`);
    if (!Array.isArray(doc.layers)) throw manifestError(what, 'it has no layers array');
    const manifest: ImageManifest = {
      kind: 'manifest',
      mediaType,
      config: parseDescriptor(doc.config, `${what} config`),
      layers: doc.layers.map((layer, i) => parseDescriptor(layer, `${what} layer ${i}`)),
      raw: doc,
    };
    if (typeof doc.annotations === 'object' && doc.annotations !== null) {
      manifest.annotations = doc.annotations as Record<string, string>;
    }
    return manifest;
  }
  if (INDEX_TYPES.includes(mediaType)) {
    if (doc.schemaVersion !== 2)
      throw manifestError(what, `schemaVersion is ${String(doc.schemaVersion)}, expected 2`);
    if (!Array.isArray(doc.manifests)) throw manifestError(what, 'it has no manifests array');
    const index: ImageIndex = {
      kind: 'index',
      mediaType,
      manifests: doc.manifests.map((m, i) => parseDescriptor(m, `${what} entry ${i}`)),
      raw: doc,
    };
    if (typeof doc.annotations === 'object' && doc.annotations !== null) {
      index.annotations = doc.annotations as Record<string, string>;
    }
    return index;
  }
  if (SCHEMA1_TYPES.includes(mediaType) || doc.schemaVersion === 1) {
    const fsLayers = Array.isArray(doc.fsLayers) ? doc.fsLayers : [];
    const history = Array.isArray(doc.history) ? doc.history : [];
    return {
      kind: 'schema1',
      mediaType: SCHEMA1_TYPES.includes(mediaType) ? mediaType : MediaType.dockerSchema1Signed,
      name: typeof doc.name === 'string' ? doc.name : '',
      tag: typeof doc.tag === 'string' ? doc.tag : '',
      architecture: typeof doc.architecture === 'string' ? doc.architecture : '',
      layers: fsLayers
        .map((l, i) => assertDigest((l as Record<string, unknown>)?.blobSum, `${what} fsLayer ${i}`))
        .reverse(),
      history: history
        .map((h) => {
          const text = (h as Record<string, unknown>)?.v1Compatibility;
          try {
            return typeof text === 'string' ? (JSON.parse(text) as Record<string, unknown>) : {};
          } catch {
            return {};
          }
        })
        .reverse(),
      raw: doc,
    };
  }
  throw new BallastError('MEDIA_TYPE_UNSUPPORTED', `${what} has the unsupported media type "${mediaType}"`, {
    hint: 'ballast reads Docker schema 2 manifests and lists, and OCI manifests and indexes',
  });
}

/** The parts of an image config ballast reads; `raw` keeps every field. */
export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  docker_version?: string;
  config?: {
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    WorkingDir?: string;
    User?: string;
    [key: string]: unknown;
  };
  rootfs: { type: string; diff_ids: string[] };
  history?: HistoryEntry[];
  raw: Record<string, unknown>;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export function parseConfig(bytes: Uint8Array, what = 'image config'): ImageConfig {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw manifestError(what, `not JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw manifestError(what, 'not a JSON object');
  const doc = json as Record<string, unknown>;
  const rootfs = doc.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  const diffIds = Array.isArray(rootfs?.diff_ids) ? rootfs.diff_ids : [];
  return {
    ...(doc as object),
    architecture: typeof doc.architecture === 'string' ? doc.architecture : '',
    os: typeof doc.os === 'string' ? doc.os : '',
    rootfs: {
      type: typeof rootfs?.type === 'string' ? rootfs.type : 'layers',
      diff_ids: diffIds.map((d, i) => assertDigest(d, `${what} diff_id ${i}`)),
    },
    history: Array.isArray(doc.history) ? (doc.history as HistoryEntry[]) : [],
    raw: doc,
  } as ImageConfig;
}
