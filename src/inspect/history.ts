import type { HistoryEntry } from '../image/manifest.js';
import type { ResolvedImage } from '../sources/open.js';
import { type LayerSizeOptions, layerFileBytes } from './layer-sizes.js';

/** One row of `docker history`, newest first. */
export interface HistoryRow {
  created: string | null;
  createdBy: string;
  /** Uncompressed bytes of the layer's files; 0 for an empty layer. */
  sizeBytes: number;
  /** The layer blob's size as stored (the download); 0 for an empty layer. */
  compressedSizeBytes: number;
  comment: string;
  emptyLayer: boolean;
  /** The layer blob's digest; null for an empty layer. */
  digest: string | null;
}

/**
 * The history entry that made each layer (bottom first), as docker pairs them: each entry not marked
 * `empty_layer` owns the next layer. Layers without an entry get undefined.
 */
export function layerHistory(image: ResolvedImage): (HistoryEntry | undefined)[] {
  const owners: (HistoryEntry | undefined)[] = new Array(image.manifest.layers.length).fill(undefined);
  let next = 0;
  for (const entry of image.config.history ?? []) {
    if (entry.empty_layer === true || next >= owners.length) continue;
    owners[next++] = entry;
  }
  return owners;
}

/**
 * Pairs the config's history with the manifest's layers as docker does: each entry not marked
 * `empty_layer` owns the next layer. Layers left over (a config without history) get rows of their own.
 */
export async function imageHistory(
  image: ResolvedImage,
  options: LayerSizeOptions = {},
): Promise<HistoryRow[]> {
  const sizes = await layerFileBytes(image, options);
  const layers = image.manifest.layers;
  const rows: HistoryRow[] = [];
  let next = 0;
  for (const entry of image.config.history ?? []) {
    const empty = entry.empty_layer === true || next >= layers.length;
    const layer = empty ? undefined : layers[next];
    rows.push({
      created: entry.created ?? null,
      createdBy: entry.created_by ?? '',
      sizeBytes: layer ? (sizes[next] ?? 0) : 0,
      compressedSizeBytes: layer?.size ?? 0,
      comment: entry.comment ?? '',
      emptyLayer: layer === undefined,
      digest: layer?.digest ?? null,
    });
    if (layer) next++;
  }
  for (; next < layers.length; next++) {
    const layer = layers[next]!;
    rows.push({
      created: image.config.created ?? null,
      createdBy: '',
      sizeBytes: sizes[next] ?? 0,
      compressedSizeBytes: layer.size,
      comment: '',
      emptyLayer: false,
      digest: layer.digest,
    });
  }
  return rows.reverse();
}
