/**
 * `ballast files`: a du-like listing of the final filesystem, or of what one layer wrote and removed,
 * under a directory and to a depth, largest first.
 */
import { BallastError } from '../errors.js';
import { K_ADDED, K_CHANGED, K_MERGED, K_OPAQUE, K_REMOVED } from './merge.js';
import type { ImageAnalysis } from './result.js';
import { T_DIR, TYPE_NAMES } from './tree.js';

export interface FilesOptions {
  /** A layer's index: list its changes instead of the final filesystem. */
  layer?: number;
  /** The directory to list ('' or '/' for the root). */
  path?: string;
  /** How many levels below `path` to list. Default 1. */
  depth?: number;
  /** At most this many rows. Default: all. */
  limit?: number;
}

export type FileChange = 'added' | 'changed' | 'removed' | 'opaque';

export interface FileRow {
  path: string;
  type: (typeof TYPE_NAMES)[number];
  /** Final view: visible bytes below. Layer view: bytes the layer wrote below. */
  bytes: number;
  /** Non-directory paths below (final view), or the layer's entries below (layer view). */
  files: number;
  /** Layer view: the bytes of lower layers this entry removed below. */
  removedBytes?: number;
  /** Layer view: what the layer did at this very path (absent for directories it only passed through). */
  change?: FileChange;
  /** Final view: the layer that wrote the visible version. */
  layer?: number;
}

export interface FilesView {
  path: string;
  layer: number | null;
  bytes: number;
  files: number;
  removedBytes?: number;
  rows: FileRow[];
}

const CHANGE_NAMES: Record<number, FileChange | undefined> = {
  [K_ADDED]: 'added',
  [K_CHANGED]: 'changed',
  [K_MERGED]: undefined,
  [K_REMOVED]: 'removed',
  [K_OPAQUE]: 'opaque',
};

export function filesView(analysis: ImageAnalysis, options: FilesOptions = {}): FilesView {
  const tree = analysis.merger.tree;
  const depth = options.depth ?? 1;
  if (!(depth >= 0)) throw new BallastError('USAGE', `--depth must be 0 or more, got ${depth}`);
  const path = (options.path ?? '').replace(/^\/+|\/+$/g, '');
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (options.layer === undefined) return finalView(analysis, path, depth, limit);

  const position = analysis.merger.layers.findIndex((l) => l.meta.index === options.layer);
  if (position < 0) {
    throw new BallastError(
      'USAGE',
      `no layer ${options.layer}: the image has layers 0 to ${analysis.merger.layers.length - 1}`,
    );
  }
  // Through the final filesystem's symlinks where the path still exists; literally where it is gone.
  const resolved = path === '' ? 0 : tree.resolve(path, true);
  const base = resolved >= 0 ? resolved : tree.find(path);
  if (base < 0) throw new BallastError('NOT_FOUND', `layer ${options.layer} has nothing under /${path}`);
  const m = analysis.merger;
  const start = m.logStart[position] ?? 0;
  const end = m.logStart[position + 1] ?? m.lNode.length;
  const written = new Map<number, number>();
  const removed = new Map<number, number>();
  const counts = new Map<number, number>();
  const kinds = new Map<number, number>();
  for (let i = start; i < end; i++) {
    const node = m.lNode.get(i);
    if (!tree.isWithin(node, base)) continue;
    const kind = m.lKind.get(i);
    const bytes = m.lBytes.get(i);
    const prior = kinds.get(node);
    // The most telling kind wins when a layer touches a path twice (a dir merged, then made opaque).
    if (prior === undefined || prior === K_MERGED || kind === K_REMOVED || kind === K_OPAQUE)
      kinds.set(node, kind);
    const target = kind === K_REMOVED || kind === K_OPAQUE ? removed : written;
    for (let n = node; ; n = tree.parent[n] ?? 0) {
      target.set(n, (target.get(n) ?? 0) + bytes);
      if (kind !== K_MERGED && kind !== K_OPAQUE) counts.set(n, (counts.get(n) ?? 0) + 1);
      else counts.set(n, counts.get(n) ?? 0);
      if (n === base || n === 0) break;
    }
  }
  const baseDepth = tree.depthOf(base);
  const rows: FileRow[] = [];
  const seen = new Set([...written.keys(), ...removed.keys()]);
  for (const node of seen) {
    if (node === base) continue;
    const d = tree.depthOf(node) - baseDepth;
    if (d > depth) continue;
    const row: FileRow = {
      path: tree.pathOf(node),
      type: TYPE_NAMES[tree.type[node] ?? T_DIR] ?? 'other',
      bytes: written.get(node) ?? 0,
      files: counts.get(node) ?? 0,
    };
    const gone = removed.get(node) ?? 0;
    if (gone > 0 || kinds.get(node) === K_REMOVED || kinds.get(node) === K_OPAQUE) row.removedBytes = gone;
    const change = CHANGE_NAMES[kinds.get(node) ?? 0];
    if (change) row.change = change;
    // A removed path's type is what it was (still recorded on the dead node).
    rows.push(row);
  }
  sortRows(rows);
  return {
    path,
    layer: options.layer,
    bytes: written.get(base) ?? 0,
    files: counts.get(base) ?? 0,
    removedBytes: removed.get(base) ?? 0,
    rows: rows.slice(0, limit),
  };
}

function finalView(analysis: ImageAnalysis, path: string, depth: number, limit: number): FilesView {
  const tree = analysis.merger.tree;
  // A symlinked directory (merged /usr: /lib -> usr/lib) is listed as its target.
  const base = path === '' ? 0 : tree.resolve(path, true);
  if (base < 0) throw new BallastError('NOT_FOUND', `/${path} is not in the final filesystem`);
  const rows: FileRow[] = [];
  const stack: [number, number][] = [];
  if (tree.type[base] === T_DIR) tree.forEachChild(base, (child) => stack.push([child, 1]));
  while (stack.length > 0) {
    const [node, d] = stack.pop() ?? [0, 0];
    if (!tree.isAlive(node)) continue;
    rows.push({
      path: tree.pathOf(node),
      type: TYPE_NAMES[tree.type[node] ?? T_DIR] ?? 'other',
      bytes: analysis.cumBytes[node] ?? 0,
      files: analysis.cumFiles[node] ?? 0,
      layer: analysis.layerIndex(tree.layer[node] ?? 0),
    });
    if (d < depth && tree.type[node] === T_DIR)
      tree.forEachChild(node, (child) => stack.push([child, d + 1]));
  }
  sortRows(rows);
  return {
    path,
    layer: null,
    bytes: base === 0 ? analysis.finalBytes : (analysis.cumBytes[base] ?? 0),
    files: base === 0 ? analysis.report.fileCount : (analysis.cumFiles[base] ?? 0),
    rows: rows.slice(0, limit),
  };
}

function sortRows(rows: FileRow[]): void {
  rows.sort(
    (a, b) => b.bytes - a.bytes || (b.removedBytes ?? 0) - (a.removedBytes ?? 0) || cmp(a.path, b.path),
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
