import { BallastError } from '../errors.js';
import { verifyBytes } from '../image/digest.js';
import {
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  parseConfig,
  parseManifest,
} from '../image/manifest.js';
import { formatPlatform, hostPlatform, parsePlatform, selectPlatform } from '../image/platform.js';
import { type ImageReference, parseReference } from '../reference/parse.js';
import { readStream } from '../util/streams.js';
import type { ImageSource, SourceOptions, StoredManifest } from './types.js';

/** Opens the source a reference names; each transport's module is loaded only when used. */
export async function openSource(
  reference: string | ImageReference,
  options: SourceOptions = {},
): Promise<ImageSource> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  switch (ref.transport) {
    case 'docker': {
      const { RegistrySource } = await import('./registry.js');
      return RegistrySource.open(ref, options);
    }
    case 'oci': {
      const { OciLayoutSource } = await import('./oci-layout.js');
      return OciLayoutSource.open(ref, options);
    }
    case 'docker-archive': {
      const { DockerArchiveSource } = await import('./docker-archive.js');
      return DockerArchiveSource.open(ref, options);
    }
    case 'docker-daemon': {
      const { DockerDaemonSource } = await import('./docker-daemon.js');
      return DockerDaemonSource.open(ref, options);
    }
  }
}

/** An image manifest chosen for one platform, with its config. */
export interface ResolvedImage {
  source: ImageSource;
  /** The top-level manifest as stored (an index when the image is multi-platform). */
  topLevel: StoredManifest;
  index: ImageIndex | undefined;
  /** The platform image's manifest bytes and digest (equal to `topLevel` for a single image). */
  stored: StoredManifest;
  manifest: ImageManifest;
  configBytes: Buffer;
  config: ImageConfig;
}

/**
 * Follows an index to the image for `platform` (the host's when absent) and reads its config. A schema
 * 1 manifest is refused here with a clear message: it has no config and no diff IDs.
 */
export async function resolveImage(source: ImageSource, platform?: string): Promise<ResolvedImage> {
  const topLevel = await source.getManifest();
  const top = parseManifest(topLevel.bytes, topLevel.mediaType, `manifest of ${source.name}`);
  let stored = topLevel;
  let manifest = top;
  let index: ImageIndex | undefined;
  if (top.kind === 'index') {
    index = top;
    const wanted = platform ? parsePlatform(platform) : hostPlatform();
    const entry = selectPlatform(top.manifests, wanted, `the index of ${source.name}`);
    stored = await source.getManifest(entry.digest);
    verifyBytes(stored.bytes, entry, `manifest ${entry.digest} of ${source.name}`);
    manifest = parseManifest(
      stored.bytes,
      entry.mediaType,
      `manifest ${formatPlatform(entry.platform)} of ${source.name}`,
    );
    if (manifest.kind !== 'manifest') {
      throw new BallastError(
        'MANIFEST_INVALID',
        `the index of ${source.name} points at another index for ${formatPlatform(entry.platform)}`,
      );
    }
  }
  if (manifest.kind === 'schema1') {
    throw new BallastError(
      'MEDIA_TYPE_UNSUPPORTED',
      `${source.name} is a Docker schema 1 image, which has no image config`,
      {
        hint: 'only `ballast inspect` (and --raw) reads schema 1; re-push the image with a current docker or skopeo to convert it',
      },
    );
  }
  if (manifest.kind !== 'manifest')
    throw new BallastError('MANIFEST_INVALID', `unexpected manifest kind in ${source.name}`);
  const configStream = await source.getBlob(manifest.config);
  const configBytes = await readStream(configStream, 64 * 1024 * 1024, `config of ${source.name}`);
  const config = parseConfig(configBytes, `config of ${source.name}`);
  return { source, topLevel, index, stored, manifest, configBytes, config };
}
