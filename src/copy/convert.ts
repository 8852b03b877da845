/**
 * Docker schema 2 to OCI media types, as skopeo does when the destination (an OCI layout) takes OCI
 * types only. Only the manifest changes: configs and layers stay byte-identical, so their digests stay;
 * a manifest's own digest changes, and so does every index entry that points at one.
 */
import { BallastError } from '../errors.js';
import type { Descriptor } from '../image/digest.js';
import { MediaType } from '../image/media-types.js';

const DOCKER_TO_OCI: Record<string, string> = {
  [MediaType.dockerManifest]: MediaType.ociManifest,
  [MediaType.dockerManifestList]: MediaType.ociIndex,
  [MediaType.dockerConfig]: MediaType.ociConfig,
  [MediaType.dockerLayer]: MediaType.ociLayerGzip,
  [MediaType.dockerLayerUncompressed]: MediaType.ociLayer,
  [MediaType.dockerLayerForeign]: MediaType.ociLayerNondistributableGzip,
};

/** The OCI media type for a Docker one; OCI (and other) types are returned unchanged. */
export function ociMediaType(mediaType: string): string {
  return DOCKER_TO_OCI[mediaType] ?? mediaType;
}

/** Whether `mediaType` is a Docker schema 2 type that has an OCI equivalent. */
export function isDockerType(mediaType: string): boolean {
  return DOCKER_TO_OCI[mediaType] !== undefined;
}

function convertDescriptor(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BallastError('MANIFEST_INVALID', `${what} is not an object`);
  }
  const descriptor = { ...(value as Record<string, unknown>) };
  if (typeof descriptor.mediaType === 'string') descriptor.mediaType = ociMediaType(descriptor.mediaType);
  return descriptor;
}

function parseObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  const doc: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new BallastError('MANIFEST_INVALID', `${what} is not a JSON object`);
  }
  return doc as Record<string, unknown>;
}

/**
 * A Docker schema 2 image manifest rewritten with OCI media types (manifest, config, layers); every
 * other field is kept. The config descriptor keeps its digest: the config bytes do not change.
 */
export function convertImageManifest(bytes: Uint8Array, what = 'manifest'): Buffer {
  const doc = parseObject(bytes, what);
  const out: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaType.ociManifest };
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'schemaVersion' || key === 'mediaType') continue;
    if (key === 'config') out.config = convertDescriptor(value, `${what} config`);
    else if (key === 'layers' && Array.isArray(value)) {
      out.layers = value.map((layer, i) => {
        const converted = convertDescriptor(layer, `${what} layer ${i}`);
        if (
          typeof converted.mediaType === 'string' &&
          converted.mediaType.startsWith('application/vnd.docker.')
        ) {
          throw new BallastError(
            'MEDIA_TYPE_UNSUPPORTED',
            `${what}: layer ${i} has the Docker media type ${converted.mediaType}, which has no OCI equivalent`,
          );
        }
        return converted;
      });
    } else out[key] = value;
  }
  return Buffer.from(JSON.stringify(out));
}

/**
 * A Docker manifest list rewritten as an OCI index. `children` maps an entry's old digest to the
 * descriptor of its converted manifest (new digest, size, media type); entries not in it are kept.
 */
export function convertIndex(
  bytes: Uint8Array,
  children: ReadonlyMap<string, Pick<Descriptor, 'digest' | 'size' | 'mediaType'>>,
  what = 'index',
): Buffer {
  const doc = parseObject(bytes, what);
  const out: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaType.ociIndex };
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'schemaVersion' || key === 'mediaType') continue;
    if (key === 'manifests' && Array.isArray(value)) {
      out.manifests = value.map((entry, i) => {
        const converted = convertDescriptor(entry, `${what} entry ${i}`);
        const child = typeof converted.digest === 'string' ? children.get(converted.digest) : undefined;
        if (child !== undefined) {
          converted.digest = child.digest;
          converted.size = child.size;
          converted.mediaType = child.mediaType;
        }
        return converted;
      });
    } else out[key] = value;
  }
  return Buffer.from(JSON.stringify(out));
}
