/**
 * The analysis entry point. Feed it the layers bottom first (`beginLayer`, `apply` each change record
 * in archive order, `endLayer`), hand it the package-database bytes it asks for (`wantsContent`,
 * `addContent`, in any order), then `finish` for the report and the `files` view.
 */
import type { Change } from '../layers/changes.js';
import { LayerMerger, wantsContent } from './merge.js';
import { ImageAnalysis } from './result.js';
import type { LayerMeta, ReportOptions } from './types.js';

export interface AnalyzerOptions {
  /** A hint for the number of paths, to size the tables once. */
  expectedEntries?: number;
}

export class ImageAnalyzer {
  private readonly merger: LayerMerger;

  constructor(options: AnalyzerOptions = {}) {
    this.merger = new LayerMerger(options);
  }

  /** True for the paths whose bytes the analysis wants (package databases). */
  static wantsContent(path: string): boolean {
    return wantsContent(path);
  }

  /** Starts the next layer; `meta.index` must be its position (0 for the bottom layer). */
  beginLayer(meta: LayerMeta): void {
    this.merger.beginLayer(meta);
  }

  /** Applies one change record of the current layer. An `add` with a wanted `body` is kept. */
  apply(change: Change): void {
    this.merger.apply(change);
  }

  endLayer(): void {
    this.merger.endLayer();
  }

  /** The bytes of a wanted file as written by layer `layer` (its index). */
  addContent(layer: number, path: string, data: Buffer): void {
    this.merger.addContent(layer, path, data);
  }

  /** Bytes held by the analysis's typed arrays so far. */
  get arrayBytes(): number {
    return this.merger.arrayBytes;
  }

  /** Ends the input and computes the report. */
  finish(options: ReportOptions = {}): ImageAnalysis {
    return new ImageAnalysis(this.merger, options);
  }
}

export interface LayerInput {
  meta: LayerMeta;
  changes: Iterable<Change>;
  /** Package-database files of this layer: path -> bytes. */
  contents?: Iterable<[string, Buffer]>;
}

/** Analyses layers already in memory (tests, small images). */
export function analyzeLayers(
  layers: Iterable<LayerInput>,
  options: ReportOptions & AnalyzerOptions = {},
): ImageAnalysis {
  const analyzer = new ImageAnalyzer(options);
  for (const layer of layers) {
    analyzer.beginLayer(layer.meta);
    for (const change of layer.changes) analyzer.apply(change);
    analyzer.endLayer();
    for (const [path, data] of layer.contents ?? []) analyzer.addContent(layer.meta.index, path, data);
  }
  return analyzer.finish(options);
}
