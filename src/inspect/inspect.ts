import { BallastError } from '../errors.js';
import { parseManifest, type Schema1Manifest } from '../image/manifest.js';
import { type ResolvedImage, resolveImage } from '../sources/open.js';
import type { ImageSource } from '../sources/types.js';
import { goTimeString } from '../util/time.js';

/** A layer as `skopeo inspect` lists it in `LayersData`. */
export interface InspectLayer {
  MIMEType: string;
  Digest: string;
  Size: number;
  Annotations: Record<string, string> | null;
}

/** The JSON `skopeo inspect` prints, field for field and in the same order. */
export interface InspectOutput {
  Name?: string;
  Digest: string;
  RepoTags: string[];
  Created: string | null;
  DockerVersion: string;
  Labels: Record<string, string> | null;
  Architecture: string;
  Variant?: string;
  Os: string;
  Layers: string[];
  LayersData: InspectLayer[];
  Env: string[] | null;
}

export interface InspectOptions {
  platform?: string;
  /** List the repository's tags into `RepoTags` (registry sources); default true. */
  tags?: boolean;
}

function created(text: unknown, what: string): string | null {
  if (typeof text !== 'string' || text === '') return null;
  const formatted = goTimeString(text);
  if (formatted === undefined) {
    throw new BallastError(
      'MANIFEST_INVALID',
      `${what} has a created time that is not RFC 3339: ${JSON.stringify(text)}`,
    );
  }
  return formatted;
}

async function repoTags(source: ImageSource, wanted: boolean): Promise<string[]> {
  // skopeo lists tags only for registry images; other transports print an empty list.
  if (!wanted || source.reference.transport !== 'docker' || !source.listTags) return [];
  return source.listTags();
}

/** What `skopeo inspect` prints for the image, read from any source. */
export async function inspectImage(
  source: ImageSource,
  options: InspectOptions = {},
): Promise<InspectOutput> {
  const top = await source.getManifest();
  const parsed = parseManifest(top.bytes, top.mediaType, `manifest of ${source.name}`);
  if (parsed.kind === 'schema1') return inspectSchema1(source, parsed, top.digest, options);
  const image = await resolveImage(source, options.platform);
  return inspectResolved(image, await repoTags(source, options.tags ?? true));
}

/** The inspect output of an image already resolved to one platform. */
export function inspectResolved(image: ResolvedImage, tags: string[]): InspectOutput {
  const { config, manifest, source } = image;
  const output: InspectOutput = {
    Digest: image.topLevel.digest,
    RepoTags: tags,
    Created: created(config.created, `config of ${source.name}`),
    DockerVersion: config.docker_version ?? '',
    Labels: config.config?.Labels ?? null,
    Architecture: config.architecture,
    Os: config.os,
    Layers: manifest.layers.map((l) => l.digest),
    LayersData: manifest.layers.map((l) => ({
      MIMEType: l.mediaType,
      Digest: l.digest,
      Size: l.size,
      Annotations: l.annotations ?? null,
    })),
    Env: config.config?.Env ?? null,
  };
  return withName(output, source);
}

function withName(output: InspectOutput, source: ImageSource): InspectOutput {
  // skopeo omits Name where the transport has no registry name (oci: layouts).
  return source.dockerReference ? { Name: source.dockerReference, ...output } : output;
}

async function inspectSchema1(
  source: ImageSource,
  manifest: Schema1Manifest,
  digest: string,
  options: InspectOptions,
): Promise<InspectOutput> {
  const top = (manifest.history[manifest.history.length - 1] ?? {}) as {
    created?: string;
    docker_version?: string;
    os?: string;
    architecture?: string;
    config?: { Labels?: Record<string, string> | null; Env?: string[] | null };
  };
  const output: InspectOutput = {
    Digest: digest,
    RepoTags: await repoTags(source, options.tags ?? true),
    Created: created(top.created, `manifest of ${source.name}`),
    DockerVersion: top.docker_version ?? '',
    Labels: top.config?.Labels ?? null,
    Architecture: top.architecture ?? manifest.architecture,
    Os: top.os ?? 'linux',
    Layers: manifest.layers,
    LayersData: manifest.layers.map((d) => ({
      // schema 1 descriptors carry no media type or size
      MIMEType: '',
      Digest: d,
      Size: -1,
      Annotations: null,
    })),
    Env: top.config?.Env ?? null,
  };
  return withName(output, source);
}
