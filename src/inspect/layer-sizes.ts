import type { Descriptor } from '../image/digest.js';
import { measureLayer, measureLayerFile } from '../layers/measure.js';
import type { ResolvedImage } from '../sources/open.js';
import type { BlobOptions } from '../sources/types.js';
import { mapLimit } from '../util/concurrency.js';

export interface LayerSizeOptions {
  /** Layers measured at once (each uses a core for decompression). */
  concurrency?: number;
  /**
   * Stream and hash every layer even where the source could seek over file bodies (a docker-archive's
   * uncompressed layer.tar): slower, but every byte is checked against the diff ID.
   */
  verify?: boolean;
  /** Called when a layer starts streaming and as its bytes arrive. */
  onProgress?: (layer: number, progress: Parameters<NonNullable<BlobOptions['onProgress']>>[0]) => void;
}

/**
 * The uncompressed file bytes of each layer (what `docker history` shows): taken from the source when
 * it knows them (the Docker daemon), otherwise measured by streaming the layer through the tar reader.
 */
export async function layerFileBytes(
  image: ResolvedImage,
  options: LayerSizeOptions = {},
): Promise<number[]> {
  const { source, manifest, config } = image;
  const known = source.knownLayerSizes ? await source.knownLayerSizes() : new Map<string, number>();
  const diffIds = config.rootfs.diff_ids;
  return mapLimit(manifest.layers, options.concurrency ?? 2, async (layer: Descriptor, index) => {
    const diffId = diffIds[index];
    const size = diffId === undefined ? undefined : known.get(diffId);
    if (size !== undefined) return size;
    if (!options.verify && diffId !== undefined && source.layerFileRange) {
      const range = await source.layerFileRange(diffId);
      if (range) return (await measureLayerFile(range.path, range.offset, range.length)).fileBytes;
    }
    const blobOptions: BlobOptions = {};
    if (options.onProgress) {
      const report = options.onProgress;
      blobOptions.onProgress = (progress) => report(index, progress);
    }
    const stream = await source.getBlob(layer, blobOptions);
    return (await measureLayer(stream, `layer ${index} (${layer.digest}) of ${source.name}`)).fileBytes;
  });
}
