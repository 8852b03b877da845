import { Transform, type TransformCallback } from 'node:stream';
import { ImageAnalyzer } from '../analysis/analyzer.js';
import type { ImageAnalysis } from '../analysis/result.js';
import type { ReportOptions } from '../analysis/types.js';
import type { Change } from '../layers/changes.js';
import { readLayerChanges } from '../layers/changes.js';
import type { TarIssue } from '../layers/tar.js';
import type { ResolvedImage } from '../sources/open.js';
import type { BlobProgress } from '../sources/types.js';
import { layerHistory } from './history.js';

export interface AnalyzeOptions extends ReportOptions {
  /** Layers streamed at once (the merge still happens in layer order). Default 2. */
  concurrency?: number;
  /**
   * Stream and hash every layer even where the source could seek over file bodies (a docker-archive's
   * uncompressed layer.tar): slower, but every byte is checked against the diff ID.
   */
  verify?: boolean;
  onLayerStart?: (layer: number, total: number | undefined) => void;
  onLayerProgress?: (layer: number, progress: BlobProgress) => void;
  onLayerDone?: (layer: number) => void;
}

/** A tar-level problem found while reading a layer (an entry escaping the root, a missing end marker). */
export interface LayerIssue extends TarIssue {
  layer: number;
}

export interface AnalyzedImage {
  analysis: ImageAnalysis;
  /** Problems in the layer archives themselves, reported and never followed. */
  layerIssues: LayerIssue[];
  /** Layers read by seeking over file bodies (headers only: not digest-verified). */
  seekedLayers: number[];
}

interface LayerTask {
  /** Records that arrived before the merge reached this layer. */
  buffered: Change[];
  /** Where records go once the merge has reached this layer. */
  live: ((change: Change) => void) | undefined;
  /** Called when the merge reaches this layer. */
  goLive: () => void;
  done: Promise<{ issues: TarIssue[]; seeked: boolean }>;
}

/** Records a layer read ahead may hold before its download is paused (a few MB of objects). */
const READ_AHEAD_RECORDS = 20_000;

/**
 * Holds chunks back while `open()` is false, so a layer read ahead stops (and the source pauses by
 * backpressure) instead of buffering its whole change list in memory.
 */
class Gate extends Transform {
  private waiting: (() => void) | undefined;
  constructor(private readonly open: () => boolean) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.open()) {
      callback(null, chunk);
      return;
    }
    this.waiting = () => callback(null, chunk);
  }
  release(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }
}

/**
 * Streams every layer of the image through the tar reader into the analysis: several layers read at
 * once, the merge done strictly bottom to top. A registry image is never written to disk.
 */
export async function analyzeImage(
  image: ResolvedImage,
  options: AnalyzeOptions = {},
): Promise<AnalyzedImage> {
  const { source, manifest, config } = image;
  const history = layerHistory(image);
  const analyzer = new ImageAnalyzer();
  const wantBody = (entry: { path: string }) => ImageAnalyzer.wantsContent(entry.path);
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const tasks: LayerTask[] = [];

  const start = (index: number): LayerTask => {
    const layer = manifest.layers[index]!;
    const diffId = config.rootfs.diff_ids[index];
    let signalLive = () => {};
    const live = new Promise<void>((resolve) => {
      signalLive = resolve;
    });
    let gate: Gate | undefined;
    const task: LayerTask = {
      buffered: [],
      live: undefined,
      goLive: () => {
        signalLive();
        gate?.release();
      },
      done: Promise.resolve({ issues: [], seeked: false }),
    };
    const onChange = (change: Change) => {
      if (task.live) task.live(change);
      else task.buffered.push(change);
    };
    const what = `layer ${index} (${layer.digest}) of ${source.name}`;
    task.done = (async () => {
      const range =
        !options.verify && diffId && source.layerFileRange ? await source.layerFileRange(diffId) : undefined;
      let result: Awaited<ReturnType<typeof readLayerChanges>>;
      if (range) {
        // Seeking over a file is fast and cannot be paused half-way: wait for the merge instead.
        await live;
        options.onLayerStart?.(index, layer.size);
        result = await readLayerChanges(range, onChange, { wantBody, what });
      } else {
        options.onLayerStart?.(index, layer.size);
        const stream = await source.getBlob(layer, {
          onProgress: (progress) => options.onLayerProgress?.(index, progress),
        });
        gate = new Gate(() => task.live !== undefined || task.buffered.length < READ_AHEAD_RECORDS);
        stream.on('error', (error) => gate?.destroy(error));
        result = await readLayerChanges(stream.pipe(gate), onChange, { wantBody, what });
      }
      options.onLayerDone?.(index);
      return { issues: result.issues, seeked: range !== undefined };
    })();
    // A failure surfaces when the merge awaits this layer; until then it must not count as unhandled.
    task.done.catch(() => {});
    return task;
  };

  const layerIssues: LayerIssue[] = [];
  const seekedLayers: number[] = [];
  const count = manifest.layers.length;
  for (let index = 0; index < Math.min(concurrency, count); index++) tasks.push(start(index));
  for (let index = 0; index < count; index++) {
    const task = tasks[index]!;
    const layer = manifest.layers[index]!;
    analyzer.beginLayer({
      index,
      digest: layer.digest,
      diffId: config.rootfs.diff_ids[index] ?? '',
      createdBy: history[index]?.created_by ?? '',
      compressedBytes: layer.size,
    });
    for (const change of task.buffered) analyzer.apply(change);
    task.buffered = [];
    task.live = (change) => analyzer.apply(change);
    task.goLive();
    const { issues, seeked } = await task.done;
    analyzer.endLayer();
    for (const issue of issues) layerIssues.push({ ...issue, layer: index });
    if (seeked) seekedLayers.push(index);
    if (index + concurrency < count) tasks.push(start(index + concurrency));
  }
  const command = [...(config.config?.Entrypoint ?? []), ...(config.config?.Cmd ?? [])];
  const reportOptions: ReportOptions = { command };
  if (options.top !== undefined) reportOptions.top = options.top;
  if (options.wastedLimit !== undefined) reportOptions.wastedLimit = options.wastedLimit;
  if (options.keepLocales !== undefined) reportOptions.keepLocales = options.keepLocales;
  return { analysis: analyzer.finish(reportOptions), layerIssues, seekedLayers };
}
