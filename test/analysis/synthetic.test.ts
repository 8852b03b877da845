/**
 * Builders of synthetic layers for the analysis tests (this file holds no tests itself: it is named
 * *.test.ts only to live beside them).
 */

import { type AnalyzerOptions, analyzeLayers } from '../../src/analysis/analyzer.js';
import type { ImageAnalysis } from '../../src/analysis/result.js';
import type { LayerMeta, ReportOptions } from '../../src/analysis/types.js';
import type { AddChange, Change } from '../../src/layers/changes.js';

export interface Attrs {
  mode?: number;
  uid?: number;
  gid?: number;
  body?: string;
}

let counter = 0;

function add(path: string, type: AddChange['type'], size: number, linkname: string, attrs: Attrs): AddChange {
  return {
    kind: 'add',
    path,
    type,
    size,
    mode: attrs.mode ?? (type === 'dir' ? 0o755 : 0o644),
    uid: attrs.uid ?? 0,
    gid: attrs.gid ?? 0,
    mtime: 0,
    linkname,
    body: attrs.body === undefined ? undefined : Buffer.from(attrs.body),
    index: counter++,
  };
}

export const file = (path: string, size: number, attrs: Attrs = {}): AddChange =>
  add(path, 'file', size, '', attrs);
/** A file whose content is `text` (its size is the text's byte length). */
export const text = (path: string, body: string, attrs: Attrs = {}): AddChange =>
  add(path, 'file', Buffer.byteLength(body), '', { ...attrs, body });
export const dir = (path: string, attrs: Attrs = {}): AddChange => add(path, 'dir', 0, '', attrs);
export const symlink = (path: string, target: string): AddChange => add(path, 'symlink', 0, target, {});
export const hardlink = (path: string, target: string): AddChange => add(path, 'hardlink', 0, target, {});
export const del = (path: string): Change => ({ kind: 'delete', path, index: counter++ });
export const opq = (path: string): Change => ({ kind: 'opaque', path, index: counter++ });

export function meta(index: number, createdBy = `layer ${index}`): LayerMeta {
  return {
    index,
    digest: `sha256:${String(index).padStart(64, '0')}`,
    diffId: `sha256:${String(index + 100).padStart(64, '0')}`,
    createdBy,
    compressedBytes: 1000 + index,
  };
}

/** Analyses layers given as lists of change records (bottom first). */
export function run(
  layers: (Change[] | { changes: Change[]; createdBy: string })[],
  options: ReportOptions & AnalyzerOptions = {},
): ImageAnalysis {
  return analyzeLayers(
    layers.map((layer, index) =>
      Array.isArray(layer)
        ? { meta: meta(index), changes: layer }
        : { meta: meta(index, layer.createdBy), changes: layer.changes },
    ),
    options,
  );
}

/** The final filesystem's visible non-directory paths with their bytes, sorted. */
export function visible(analysis: ImageAnalysis): Record<string, number> {
  const out: Record<string, number> = {};
  const tree = analysis.merger.tree;
  for (let node = 1; node < tree.count; node++) {
    if (tree.isAlive(node) && tree.type[node] !== 0) out[tree.pathOf(node)] = analysis.nodeBytes[node] ?? 0;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}
