import { type ImageReference, parseReference } from '../reference/parse.js';
import { openSource, resolveImage } from '../sources/open.js';
import type { SourceOptions } from '../sources/types.js';
import { mapLimit } from '../util/concurrency.js';
import { layerFileBytes } from './layer-sizes.js';

export interface SizeRow {
  /** The reference as the user typed it. */
  reference: string;
  /** The digest of the top-level manifest (an index for a multi-platform image): what to pin. */
  digest: string;
  /** The digest of the chosen platform's manifest. */
  platformDigest: string;
  platform: string;
  created: string | null;
  layers: number;
  /** The sum of the layer blobs' sizes in the manifest: what a pull downloads. */
  compressedBytes: number;
  /** The uncompressed file bytes, as `docker image inspect` reports `Size`; null unless measured. */
  sizeBytes: number | null;
}

export interface SizesOptions extends SourceOptions {
  /** Stream every layer to measure its uncompressed size. */
  exact?: boolean;
  /** Images worked on at once. */
  concurrency?: number;
  /** Hash archive layers rather than seek over them (see LayerSizeOptions.verify). */
  verify?: boolean;
}

export type SizeResult = { ok: true; row: SizeRow } | { ok: false; reference: string; error: unknown };

/** Sizes of one image without pulling it. */
export async function imageSize(
  reference: string | ImageReference,
  options: SizesOptions = {},
): Promise<SizeRow> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  const source = await openSource(ref, options);
  try {
    const image = await resolveImage(source, options.platform);
    const { config, manifest } = image;
    const sizes = options.exact
      ? await layerFileBytes(image, { verify: options.verify === true })
      : undefined;
    return {
      reference: ref.input,
      digest: image.topLevel.digest,
      platformDigest: image.stored.digest,
      platform: [config.os, config.architecture, config.variant].filter(Boolean).join('/'),
      created: config.created ?? null,
      layers: manifest.layers.length,
      compressedBytes: manifest.layers.reduce((sum, l) => sum + l.size, 0),
      sizeBytes: sizes ? sizes.reduce((sum, s) => sum + s, 0) : null,
    };
  } finally {
    await source.close();
  }
}

/**
 * Sizes of several images, smallest first (by uncompressed size when measured, else by download).
 * One image that fails does not stop the others: its error is returned in place.
 */
export async function compareSizes(
  references: readonly string[],
  options: SizesOptions = {},
): Promise<SizeResult[]> {
  const results = await mapLimit(
    references,
    options.concurrency ?? 4,
    async (reference): Promise<SizeResult> => {
      try {
        return { ok: true, row: await imageSize(reference, options) };
      } catch (error) {
        return { ok: false, reference, error };
      }
    },
  );
  const key = (r: SizeResult) =>
    r.ok ? (r.row.sizeBytes ?? r.row.compressedBytes) : Number.POSITIVE_INFINITY;
  return [...results].sort((a, b) => key(a) - key(b));
}
